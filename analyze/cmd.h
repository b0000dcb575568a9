/* Subcommands of the ckptscope CLI.
 *
 * To add one: write `int cmd_<name>(int argc, char **argv)` in analyze/cmd_<name>.c
 * (argv[0] is the subcommand name), declare it here, add a row to the table in main.c
 * and the file to analyze/CMakeLists.txt. A command returns the process exit status:
 * 0 ok, 1 a failed check, 2 bad usage or input (cli_fail() maps CKS_E* codes). */
#ifndef CKS_CMD_H
#define CKS_CMD_H

int cmd_list(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_ppl(int argc, char **argv);
int cmd_memorize(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_evals(int argc, char **argv);
int cmd_regress(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_report(int argc, char **argv);

#endif
