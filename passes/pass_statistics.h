// The activation-statistics service a pass measures through: the caller's shared one
// (PassContext::statistics, whose cache outlives the pass), or else one of the pass's own over
// PassContext::calibration that lives as long as this object, so callers that hand over
// calibration samples only keep working.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "calibration/activation_statistics.h"
#include "passes/pass.h"

namespace llmc {

class PassStatistics {
 public:
  explicit PassStatistics(const PassContext& context);
  PassStatistics(const PassStatistics&) = delete;
  PassStatistics& operator=(const PassStatistics&) = delete;

  // Calibration samples behind the service: 0 when none were given or the set is empty.
  size_t samples() const { return service_ ? service_->samples() : 0; }
  // ActivationStatistics::get; pointers valid while this object lives and the service is not invalidated.
  Result<std::map<std::string, const calib::ChannelStatistics*>> get(const Model& model,
                                                                     const calib::StatisticsRequest& request);
  // get() for a pass that cannot work without calibration: without samples, "<model>: <pass>
  // needs calibration data (...) to measure <what>"; its errors prefixed "<model>: <pass> statistics".
  Result<std::map<std::string, const calib::ChannelStatistics*>> require(const Model& model,
                                                                         const calib::StatisticsRequest& request,
                                                                         const std::string& pass, const std::string& what);

 private:
  std::string model_path_;
  calib::CalibrationSet own_set_;
  std::unique_ptr<calib::ActivationStatistics> own_;
  calib::ActivationStatistics* service_ = nullptr;
};

}  // namespace llmc
