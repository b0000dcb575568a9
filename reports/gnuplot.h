/* gnuplot as a child process (DESIGN §6).
 *
 * cks_gnuplot_run starts `gnuplot -d /dev/stdin` with posix_spawn (never a shell): -d skips
 * every initialisation file (gnuplotrc, ~/.gnuplot), so a plot looks the same everywhere;
 * reading the script as a file (not as interactive input) makes gnuplot stop at the first
 * error. The script, data included as inline data blocks ($d << EOD), goes through a pipe;
 * gnuplot runs in the output folder, so no path of ours appears in the script; its stdout
 * is /dev/null and its stderr is captured (the first CKS_GNUPLOT_STDERR_KEEP bytes) to make
 * the error message. A gnuplot that does not finish within the timeout is killed.
 *
 * Nothing read from a run file reaches a script as code: names are written as single-quoted
 * string literals by cks_gnuplot_quote, in which gnuplot substitutes nothing (no backquote
 * commands, no @macros, no backslash escapes; '' is the only escape), and scripts set
 * `noenhanced` so label text is not markup either. */
#ifndef CKS_GNUPLOT_H
#define CKS_GNUPLOT_H

#include "textbuf.h"

#include <stddef.h>

#define CKS_GNUPLOT_PACKAGE     "gnuplot-nox" /* the Debian package named in errors */
#define CKS_GNUPLOT_TIMEOUT_MS  60000         /* one plot; K2's largest heatmap takes < 1 s */
#define CKS_GNUPLOT_STDERR_KEEP 16384         /* bytes of gnuplot's stderr kept for messages */
#define CKS_GNUPLOT_MAX_LABEL   160           /* characters of a name kept in a label */

/* Finds the gnuplot executable: exe itself when it contains a '/', else the first
 * executable file named exe (NULL: "gnuplot") in a folder of $PATH. *out is a new string.
 * CKS_ENOTFOUND, with a message naming the Debian package, when there is none. */
int cks_gnuplot_find(const char *exe, char **out);

/* Runs the gnuplot at path exe (from cks_gnuplot_find) in folder cwd on script[0..len).
 * what names the plot in messages ("heatmap_rms_q.png"). Returns 0 when gnuplot exited
 * with status 0; CKS_ERROR with gnuplot's own message (its last lines of stderr) when it
 * failed; CKS_EIO when it could not be started or did not finish within timeout_ms
 * (it is then killed). Not for concurrent use from several threads of one process
 * (SIGPIPE is blocked in the calling thread while the script is written). */
int cks_gnuplot_run(const char *exe, const char *cwd, const char *script, size_t len,
                    int timeout_ms, const char *what);

/* Appends s as a gnuplot single-quoted string literal: ' doubled, control characters
 * (newlines included) as spaces, bytes that are not UTF-8 as '?', cut after
 * CKS_GNUPLOT_MAX_LABEL characters with "...". */
void cks_gnuplot_quote(cks_buf *b, const char *s);

#endif
