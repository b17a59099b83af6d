#include "util/subprocess.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/error.h"
#include "util/stopwatch.h"

namespace maskwatch {

ProcessResult run_process(const std::vector<std::string>& argv, bool capture_stdout) {
  if (argv.empty()) throw Error("run_process: no program");
  int fds[2] = {-1, -1};
  if (capture_stdout && pipe(fds) != 0) throw Error(fmt::format("pipe: {}", std::strerror(errno)));
  Stopwatch sw;
  const pid_t pid = fork();
  if (pid < 0) throw Error(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    if (capture_stdout) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    std::fprintf(stderr, "cannot start %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  ProcessResult r;
  if (capture_stdout) {
    close(fds[1]);
    char buf[4096];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) != 0;) {
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      r.out.append(buf, static_cast<size_t>(n));
    }
    close(fds[0]);
  }
  int status = 0;
  struct rusage usage {};
  while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {}
  r.wall_seconds = sw.seconds();
  r.max_rss_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (r.exit_code == 127) throw Error(fmt::format("cannot start {}", argv[0]));
  return r;
}

}  // namespace maskwatch
