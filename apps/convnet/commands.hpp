// The subcommands of the convnet program, one source file each: each takes its own arguments
// (argv[0] is the subcommand's name), prints its --help, and returns the exit status (0 done,
// 1 an error, said on stderr as "convnet <subcommand>: message").
#pragma once

int train_command(int argc, char** argv);
int predict_command(int argc, char** argv);
int summary_command(int argc, char** argv);
int to_folder_command(int argc, char** argv);
int export_command(int argc, char** argv);
int import_command(int argc, char** argv);
int inspect_command(int argc, char** argv);
