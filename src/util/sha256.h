// SHA-256 (OpenSSL's EVP API) as lowercase hex, for asset checks, model/sidecar pairing
// and data manifests.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace maskwatch {

std::string sha256_hex(const void* data, size_t size);
inline std::string sha256_hex(const std::string& s) { return sha256_hex(s.data(), s.size()); }
inline std::string sha256_hex(const std::vector<uint8_t>& v) { return sha256_hex(v.data(), v.size()); }

}  // namespace maskwatch
