// The workload's environment, merged from three sources. Later sources win for the same name:
//
//   1. the image's config env (ENV lines of the Dockerfile: PATH, LANG, ...)
//   2. the task config's `env` (the driver's own option, seed form ["K=V"] or map form)
//   3. Nomad's TaskConfig.env: the job's `env` block, templates' env, device env and every NOMAD_* variable
//
// Why Nomad's wins over the task config: it is the layer the operator and Nomad itself control
// (NOMAD_ALLOC_ID, NOMAD_PORT_*, secrets rendered by templates); a driver option must not be able to shadow
// those, and the docker driver behaves the same way (its `env` is Nomad's task env). Image env comes first so
// that jobs can override PATH and friends.
//
// The host computes 2+3 (TaskEnvOverrides) into the guest TaskSpec's process.env; nomad-init lays that over
// the image env (1) it reads from the spec (guest::ResolveEnv), so the image's order is kept and new names
// follow. A name may not be empty or contain '=' or NUL; a value may not contain NUL.
#pragma once

#include <map>
#include <string>

#include "base/error.h"

namespace nfc::task {

Result<std::map<std::string, std::string>> TaskEnvOverrides(
    const std::map<std::string, std::string>& task_config_env,
    const std::map<std::string, std::string>& nomad_env);

}  // namespace nfc::task
