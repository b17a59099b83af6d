#include "perf/timing.h"

#include <fmt/format.h>

#include <dlfcn.h>
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <thread>

#include "util/error.h"

namespace maskwatch {

TimingStats time_it(const std::function<void()>& fn, int warmup, int min_iterations, double min_seconds,
                    int max_iterations) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> times;
  Stopwatch total;
  while ((static_cast<int>(times.size()) < min_iterations || total.ms() < min_seconds * 1000) &&
         static_cast<int>(times.size()) < max_iterations) {
    Stopwatch sw;
    fn();
    times.push_back(sw.ms());
  }
  TimingStats s;
  s.iterations = static_cast<int>(times.size());
  if (times.empty()) return s;
  std::sort(times.begin(), times.end());
  s.min_ms = times.front();
  s.median_ms = times[times.size() / 2];
  s.p90_ms = times[std::min(times.size() - 1, times.size() * 9 / 10)];
  s.mean_ms = std::accumulate(times.begin(), times.end(), 0.0) / static_cast<double>(times.size());
  return s;
}

double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  return 0;
}

std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size() && c < width.size(); ++c) width[c] = std::max(width[c], r[c].size());
  const auto numeric = [](const std::string& s) {
    return !s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-') &&
           s.find_first_not_of("0123456789.-x% ") == std::string::npos;
  };
  std::string out = "|";
  for (size_t c = 0; c < header.size(); ++c) out += fmt::format(" {:<{}} |", header[c], width[c]);
  out += "\n|";
  for (size_t c = 0; c < header.size(); ++c) out += std::string(width[c] + 2, '-') + "|";
  out += "\n";
  for (const auto& r : rows) {
    out += "|";
    for (size_t c = 0; c < header.size(); ++c) {
      const std::string cell = c < r.size() ? r[c] : "";
      out += numeric(cell) ? fmt::format(" {:>{}} |", cell, width[c]) : fmt::format(" {:<{}} |", cell, width[c]);
    }
    out += "\n";
  }
  return out;
}

std::string loaded_blas() {
  void* sym = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info{};
  if (!sym || !dladdr(sym, &info) || !info.dli_fname) return "none loaded";
  char resolved[PATH_MAX];
  const std::string path = realpath(info.dli_fname, resolved) ? resolved : info.dli_fname;
  if (path.find("openblas") != std::string::npos) return "OpenBLAS (" + path + ")";
  if (path.find("/blas/") != std::string::npos) return "netlib reference BLAS (" + path + ")";
  return path;
}

std::string run_isolated(const std::function<std::string()>& fn) {
  int fds[2];
  if (pipe(fds) != 0) throw Error("pipe() failed");
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw Error("fork() failed");
  if (pid == 0) {
    close(fds[0]);
    int code = 0;
    std::string out;
    try {
      out = fn();
    } catch (const std::exception& e) {
      out = e.what();
      code = 1;
    }
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    close(fds[1]);
    _exit(code);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error("benchmark case failed: " + (out.empty() ? std::string("child crashed") : out));
  return out;
}

std::string machine_description() {
  std::string cpu = "unknown CPU";
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  double mem_gib = 0;
  std::ifstream mem("/proc/meminfo");
  for (std::string line; std::getline(mem, line);)
    if (line.rfind("MemTotal:", 0) == 0) mem_gib = std::stod(line.substr(9)) / 1024.0 / 1024.0;
  return fmt::format("{}, {} cores, {:.0f} GiB RAM", cpu, std::thread::hardware_concurrency(), mem_gib);
}

}  // namespace maskwatch
