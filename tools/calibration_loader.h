// The calibration file of --calib, read and turned into a calibration set. The file reading and
// type detection live here, in tools/, so that calibration/ works on data already in memory and
// never depends on formats/ (see DESIGN.md's folder table).
#pragma once
#include <string>

#include "calibration/calibration_data.h"
#include "formats/tokenizer.h"
#include "ir/graph.h"
#include "ir/status.h"

namespace llmc::cli {

// By content, not by name alone:
//   .npz (by extension or zip signature) -> tensors keyed by input name;
//   .npy of 1-D int32/int64              -> a token stream, windowed;
//   any other .npy                       -> tensors for one input (calib::lone_array_input);
//   any other file                       -> text through `tokenizer`'s encode_corpus (an error
//                                           when it is null), then windowed.
// Tensor samples view the mapped file without copies and keep the mapping alive. That holds for
// .npy files as numpy writes them, and for .npz members whose data the zip leaves aligned
// (numpy.savez's usually is not: read_npz then copies each such array once). Every error names
// `path`.
Result<calib::CalibrationSet> load_calibration_file(const Model& model, const std::string& path,
                                                    const Tokenizer* tokenizer,
                                                    const calib::CalibrationOptions& options);

}  // namespace llmc::cli
