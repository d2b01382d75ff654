#include "storage/key_wrap.hpp"

#include "core/ossl.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace certmate::storage {

namespace {

using cipher_ctx = ossl::handle<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

error kek_error(const std::filesystem::path& p, std::string_view why) {
    return make_error(errc::storage_failure, "key-encryption key " + p.string() + ": " + std::string(why));
}

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

} // namespace

key_wrap::~key_wrap() {
    if (!key_.empty()) OPENSSL_cleanse(key_.data(), key_.size());
}

result<key_wrap> key_wrap::from_key(std::string_view raw) {
    if (raw.size() != key_size) return make_error(errc::invalid_argument, "the key-encryption key must be 32 bytes");
    return key_wrap(std::string(raw));
}

result<key_wrap> key_wrap::from_file(const std::filesystem::path& p) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return kek_error(p, std::strerror(errno));
    struct fd_guard {
        int fd;
        ~fd_guard() { ::close(fd); }
    } guard{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) return kek_error(p, std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return kek_error(p, "not a regular file");
    if ((st.st_mode & 077) != 0) return kek_error(p, "readable or writable by group or others (chmod 600 it)");
    if (st.st_size > 128) return kek_error(p, "not 32 bytes nor 64 hex digits");
    std::string data(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < data.size()) {
        const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            OPENSSL_cleanse(data.data(), data.size());
            return kek_error(p, "cannot read it");
        }
        got += static_cast<std::size_t>(n);
    }
    std::string key;
    if (data.size() == key_size) {
        key = data;
    } else {
        std::string_view hex(data);
        if (hex.ends_with('\n')) hex.remove_suffix(1);
        bool ok = hex.size() == 2 * key_size;
        for (std::size_t i = 0; ok && i < key_size; ++i) {
            const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
            if (hi < 0 || lo < 0)
                ok = false;
            else
                key.push_back(static_cast<char>(hi * 16 + lo));
        }
        if (!ok) {
            OPENSSL_cleanse(data.data(), data.size());
            if (!key.empty()) OPENSSL_cleanse(key.data(), key.size());
            return kek_error(p, "not 32 bytes nor 64 hex digits");
        }
    }
    OPENSSL_cleanse(data.data(), data.size());
    return key_wrap(std::move(key));
}

result<std::string> key_wrap::seal(std::string_view plain, std::string_view aad) const {
    std::string out(1 + nonce_size + plain.size() + tag_size, '\0');
    out[0] = static_cast<char>(version);
    auto* nonce = reinterpret_cast<unsigned char*>(out.data() + 1);
    auto* ct = nonce + nonce_size;
    if (RAND_bytes(nonce, static_cast<int>(nonce_size)) != 1) return ossl::fail(errc::crypto_failure, "RAND_bytes");
    cipher_ctx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key_), nonce) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1 ||
        EVP_EncryptUpdate(ctx.get(), ct, &len, bytes(plain), static_cast<int>(plain.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), ct + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag_size), ct + plain.size()) != 1)
        return ossl::fail(errc::crypto_failure, "AES-256-GCM seal");
    return out;
}

result<std::string> key_wrap::open(std::string_view blob, std::string_view aad) const {
    if (blob.size() < 1 + nonce_size + tag_size || static_cast<unsigned char>(blob[0]) != version)
        return make_error(errc::crypto_failure, "wrapped key: unknown format");
    const auto* nonce = bytes(blob.substr(1, nonce_size));
    const std::string_view ct = blob.substr(1 + nonce_size, blob.size() - 1 - nonce_size - tag_size);
    std::string tag(blob.substr(blob.size() - tag_size));
    std::string out(ct.size(), '\0');
    cipher_ctx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    auto* o = reinterpret_cast<unsigned char*>(out.data());
    const bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key_), nonce) == 1 &&
                    EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1 &&
                    EVP_DecryptUpdate(ctx.get(), o, &len, bytes(ct), static_cast<int>(ct.size())) == 1 &&
                    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag_size), tag.data()) == 1 &&
                    EVP_DecryptFinal_ex(ctx.get(), o + len, &len) == 1;
    if (!ok) {
        (void)ossl::drain_errors();
        OPENSSL_cleanse(out.data(), out.size());
        return make_error(errc::crypto_failure, "wrapped key: authentication failed (altered, another owner, or "
                                                "another key-encryption key)");
    }
    return out;
}

} // namespace certmate::storage
