/* Runs gnuplot as a child process (see gnuplot.h): finds it on PATH, spawns it without a
 * shell, writes the script to its stdin while draining its stderr (poll, so neither side
 * can block the other), and enforces the timeout with SIGKILL. */
#include "gnuplot.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MESSAGE_MAX 600 /* characters of gnuplot's stderr quoted in an error */

static char *join_path(const char *dir, size_t dlen, const char *name)
{
    size_t nlen = strlen(name);
    char *p = malloc(dlen + nlen + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, dlen);
    p[dlen] = '/';
    memcpy(p + dlen + 1, name, nlen + 1);
    return p;
}

static int is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int cks_gnuplot_find(const char *exe, char **out)
{
    if (!exe)
        exe = "gnuplot";
    if (strchr(exe, '/')) {
        if (!is_executable(exe))
            return cks_error_set(CKS_ENOTFOUND,
                                 "gnuplot '%s' is not an executable file (Debian package %s)", exe,
                                 CKS_GNUPLOT_PACKAGE);
        if (!(*out = strdup(exe)))
            return cks_error_set(CKS_ENOMEM, "out of memory");
        return 0;
    }
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; *p;) {
        size_t len = strcspn(p, ":");
        if (len > 0) {
            char *cand = join_path(p, len, exe);
            if (!cand)
                return cks_error_set(CKS_ENOMEM, "out of memory");
            if (is_executable(cand)) {
                *out = cand;
                return 0;
            }
            free(cand);
        }
        p += len;
        if (*p == ':')
            p++;
    }
    return cks_error_set(CKS_ENOTFOUND,
                         "%s not found on PATH: plots need it (install the Debian package %s)", exe,
                         CKS_GNUPLOT_PACKAGE);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The child's state while it runs. */
typedef struct {
    pid_t pid;
    int in, err;     /* our ends: script writer, stderr reader (-1 when closed) */
    int broken_pipe; /* gnuplot closed its stdin before reading the whole script */
    char stderr_text[CKS_GNUPLOT_STDERR_KEEP + 1];
    size_t stderr_len;
} child;

static int spawn(child *ch, const char *exe, const char *cwd, const char *what)
{
    int in[2] = {-1, -1}, err[2] = {-1, -1}, rc = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        rc = cks_error_set(CKS_EIO, "%s: cannot create a pipe for gnuplot: %s", what,
                           strerror(errno));
        goto pipes;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    /* stdin: the script; stdout: nowhere; stderr: ours; nothing else inherited (HDF5 and
     * mapped checkpoint files may be open without close-on-exec) */
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawn_file_actions_addchdir_np(&fa, cwd);
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dflt);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {(char *)exe, "-d", "/dev/stdin", NULL};
    int e = posix_spawn(&ch->pid, exe, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (e != 0) {
        rc = cks_error_set(CKS_EIO, "%s: cannot start %s: %s", what, exe, strerror(e));
        goto pipes;
    }
    close(in[0]);
    close(err[1]);
    ch->in = in[1];
    ch->err = err[0];
    fcntl(ch->in, F_SETFL, fcntl(ch->in, F_GETFL) | O_NONBLOCK);
    fcntl(ch->err, F_SETFL, fcntl(ch->err, F_GETFL) | O_NONBLOCK);
    return 0;
pipes:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    return rc;
}

/* Writes the script and drains stderr until gnuplot closes it or the deadline passes.
 * Returns 0 when stderr reached EOF, 1 on timeout. */
static int pump(child *ch, const char *script, size_t len, double deadline)
{
    size_t off = 0;
    while (ch->err >= 0) {
        struct pollfd pf[2];
        int n = 0;
        pf[n++] = (struct pollfd){.fd = ch->err, .events = POLLIN};
        if (ch->in >= 0)
            pf[n++] = (struct pollfd){.fd = ch->in, .events = POLLOUT};
        double left = deadline - now_ms();
        if (left <= 0)
            return 1;
        if (poll(pf, (nfds_t)n, (int)left + 1) < 0 && errno != EINTR)
            return 1;
        if (ch->in >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(ch->in, script + off, len - off);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                ch->broken_pipe = errno == EPIPE;
                off = len;
            }
            if (off == len) {
                close(ch->in); /* EOF: gnuplot finishes the script and exits */
                ch->in = -1;
            }
        }
        if (pf[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            char buf[4096];
            ssize_t r = read(ch->err, buf, sizeof buf);
            if (r > 0) {
                size_t keep = CKS_GNUPLOT_STDERR_KEEP - ch->stderr_len;
                if ((size_t)r < keep)
                    keep = (size_t)r;
                memcpy(ch->stderr_text + ch->stderr_len, buf, keep);
                ch->stderr_len += keep;
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(ch->err);
                ch->err = -1;
            }
        }
    }
    return 0;
}

/* Waits for the child until the deadline; 0 with *status, or 1 on timeout. */
static int reap(child *ch, double deadline, int *status)
{
    for (;;) {
        pid_t r = waitpid(ch->pid, status, WNOHANG);
        if (r == ch->pid || (r < 0 && errno != EINTR))
            return 0;
        if (now_ms() >= deadline)
            return 1;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* gnuplot's own words for the failure: its last non-empty stderr lines (the one naming
 * "/dev/stdin" line N and the reason), made printable. */
static const char *stderr_summary(child *ch, char *out, size_t cap)
{
    char *t = ch->stderr_text;
    t[ch->stderr_len] = '\0';
    size_t end = ch->stderr_len;
    while (end > 0 && (t[end - 1] == '\n' || t[end - 1] == ' '))
        end--;
    size_t start = end;
    int lines = 0;
    while (start > 0 && lines < 2) {
        start--;
        if (t[start] == '\n' && start + 1 < end && t[start + 1] != '\n')
            lines++;
    }
    if (start < end && t[start] == '\n')
        start++;
    if (end == 0)
        return "no message";
    char flat[MESSAGE_MAX + 1];
    size_t k = 0;
    for (size_t i = start; i < end && k < MESSAGE_MAX; i++) {
        if (t[i] == '\n') {
            if (k > 0 && flat[k - 1] != ' ')
                flat[k++] = ' ';
            continue;
        }
        if (t[i] == ' ' && k > 0 && flat[k - 1] == ' ')
            continue;
        flat[k++] = t[i];
    }
    return cks_printable(out, cap, flat, k);
}

int cks_gnuplot_run(const char *exe, const char *cwd, const char *script, size_t len,
                    int timeout_ms, const char *what)
{
    child ch = {.pid = -1, .in = -1, .err = -1};
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    /* a gnuplot that stops reading early must not kill us with SIGPIPE: block it in this
     * thread (write then fails with EPIPE) and discard the one that write raised */
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    int rc = spawn(&ch, exe, cwd, what);
    if (rc)
        goto done;
    double deadline = now_ms() + timeout_ms;
    int status = 0;
    int late = pump(&ch, script, len, deadline);
    if (!late)
        late = reap(&ch, deadline, &status);
    if (late) {
        kill(ch.pid, SIGKILL);
        waitpid(ch.pid, &status, 0);
        rc = cks_error_set(CKS_EIO, "%s: gnuplot did not finish within %.1f s and was stopped",
                           what, timeout_ms / 1000.0);
        goto done;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char msg[MESSAGE_MAX + 8];
        char how[64];
        if (WIFEXITED(status))
            snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(status));
        else
            snprintf(how, sizeof how, "signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        rc = cks_error_set(CKS_ERROR, "%s: gnuplot failed (%s): %s", what, how,
                           stderr_summary(&ch, msg, sizeof msg));
    }
done:
    if (ch.in >= 0)
        close(ch.in);
    if (ch.err >= 0)
        close(ch.err);
    if (ch.broken_pipe) {
        struct timespec zero = {0, 0};
        sigset_t pending;
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE) && !sigismember(&old, SIGPIPE))
            sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static const char *quote_esc(char c)
{
    return c == '\'' ? "''" : NULL;
}

void cks_gnuplot_quote(cks_buf *b, const char *s)
{
    cks_buf_puts(b, "'");
    cks_buf_put_text(b, s, CKS_GNUPLOT_MAX_LABEL, quote_esc);
    cks_buf_puts(b, "'");
}
