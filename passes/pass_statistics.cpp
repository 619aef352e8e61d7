#include "passes/pass_statistics.h"

namespace llmc {

PassStatistics::PassStatistics(const PassContext& context) : model_path_(context.model_path) {
  if (context.statistics) {
    service_ = context.statistics;
  } else if (context.calibration) {
    own_set_.samples = *context.calibration;  // the values share their bytes
    own_ = std::make_unique<calib::ActivationStatistics>(&own_set_, context.threads);
    service_ = own_.get();
  }
}

Result<std::map<std::string, const calib::ChannelStatistics*>> PassStatistics::get(
    const Model& model, const calib::StatisticsRequest& request) {
  if (!service_) return invalid_input("activation statistics need calibration samples, and none were given");
  return service_->get(model, request);
}

Result<std::map<std::string, const calib::ChannelStatistics*>> PassStatistics::require(
    const Model& model, const calib::StatisticsRequest& request, const std::string& pass, const std::string& what) {
  if (samples() == 0)
    return invalid_input(model_path_, ": ", pass, " needs calibration data (--calib DATA or a calibration section) to measure ",
                         what);
  auto measured = get(model, request);
  if (!measured.is_ok()) return measured.status().with_context(model_path_ + ": " + pass + " statistics");
  return measured;
}

}  // namespace llmc
