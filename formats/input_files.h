// The files this process has read, by device and inode. Every reader opens its input through
// MappedFile, which notes it here; once a program calls refuse_outputs_over_inputs(), AtomicFile
// asks before it creates an output, so an output that is an input under another name (the same
// path, a symlink, a hard link, "./a" for "a") is refused before a byte is written, instead of
// replacing the user's model. A policy for commands, off for the library: writing a model back
// over the file it was read from is safe (the rename keeps the mapped inode; see
// onnx_writer_test), and a long-lived process rewrites its own outputs.
#pragma once
#include <sys/types.h>

#include <string>

namespace llmc {

void note_input_file(dev_t device, ino_t inode, const std::string& path);

void refuse_outputs_over_inputs();
bool outputs_over_inputs_refused();

// The path under which the file with this identity was read, or "" when it was not.
std::string input_file_named(dev_t device, ino_t inode);

}  // namespace llmc
