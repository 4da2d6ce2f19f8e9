// launch.hpp - umbrella header for genesis-launch.
#pragma once

#include "genesis/launch/config.hpp"
#include "genesis/launch/cost.hpp"
#include "genesis/launch/error.hpp"
#include "genesis/launch/job.hpp"
#include "genesis/launch/job_launcher.hpp"
#include "genesis/launch/json_text.hpp"
#include "genesis/launch/logger.hpp"
#include "genesis/launch/results.hpp"
#include "genesis/launch/version.hpp"
