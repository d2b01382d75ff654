#include "storage/ca_files.hpp"

#include "core/keys.hpp"
#include "core/tar.hpp"
#include "storage/atomic_file.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

namespace certmate::storage {

namespace json = boost::json;

bool ca_exists(const layout& l) {
    std::error_code ec;
    return fs::exists(l.ca_cert(), ec) && fs::exists(l.ca_key(), ec);
}

result<void> save_ca(const layout& l, const certificate_authority& ca, std::optional<std::string_view> passphrase) {
    if (ca_exists(l)) return make_error(errc::already_exists, "a CA already exists in " + l.ca_dir().string());
    if (auto r = ensure_dir(l.ca_dir(), fs::perms(0700)); !r) return r;
    auto key = ca.key_pem(passphrase);
    if (!key) return key.error();
    // The key first: a CA certificate without its key would be useless.
    if (auto r = write_file_atomic(l.ca_key(), *key, fs::perms(0600)); !r) return r;
    if (auto r = write_file_atomic(l.ca_metadata(), json::serialize(ca.metadata()) + "\n"); !r) return r;
    return write_file_atomic(l.ca_cert(), ca.cert_pem());
}

result<std::shared_ptr<const certificate_authority>> load_ca(const layout& l,
                                                             std::optional<std::string_view> passphrase) {
    if (!ca_exists(l)) return make_error(errc::ca_missing, "no CA in " + l.ca_dir().string());
    auto cert = read_file(l.ca_cert());
    if (!cert) return cert.error();
    auto key = read_file(l.ca_key());
    if (!key) return key.error();
    auto ca = certificate_authority::load(*cert, *key, passphrase);
    if (!ca) return ca.error();
    return std::shared_ptr<const certificate_authority>(std::make_shared<certificate_authority>(std::move(*ca)));
}

bool key_pem_encrypted(std::string_view pem) { return private_key_pem_encrypted(pem); }

namespace {

// `pem` (a plain private key, or one already encrypted under `passphrase`) as one block of
// encrypted PKCS#8 under `passphrase`; nothing else of the text is kept.
result<std::string> encrypt_key_pem(std::string_view pem, std::string_view passphrase) {
    auto key = load_private_key(pem, passphrase);
    if (!key) return key.error();
    return private_key_to_pem(key->get(), passphrase);
}

} // namespace

result<bool> encrypt_ca_key_in_place(const layout& l, std::string_view passphrase) {
    auto key = read_file(l.ca_key());
    if (!key) return key.error();
    if (key_pem_encrypted(*key)) return false;
    auto enc = encrypt_key_pem(*key, passphrase);
    if (!enc) return enc.error();
    if (auto r = write_file_atomic(l.ca_key(), *enc, fs::perms(0600)); !r) return r.error();
    return true;
}

result<crl_state> load_crl_state(const layout& l) {
    std::error_code ec;
    if (!fs::exists(l.crl_state(), ec)) return crl_state{};
    auto text = read_file(l.crl_state());
    if (!text) return text.error();
    boost::system::error_code jec;
    auto v = json::parse(*text, jec);
    if (jec || !v.is_object()) return make_error(errc::storage_failure, "crl_state.json is not valid JSON");
    const auto& o = v.as_object();
    crl_state s;
    auto n = o.if_contains("crl_number");
    if (!n) return make_error(errc::storage_failure, "crl_state.json lacks crl_number");
    if (n->is_uint64())
        s.crl_number = n->as_uint64();
    else if (n->is_int64() && n->as_int64() >= 0)
        s.crl_number = static_cast<std::uint64_t>(n->as_int64());
    else
        return make_error(errc::storage_failure, "crl_state.json: crl_number is not a number");
    auto time_of = [&](const char* k) -> std::optional<time_point> {
        auto p = o.if_contains(k);
        if (!p || !p->is_string()) return std::nullopt;
        return parse_time(p->as_string());
    };
    s.this_update = time_of("this_update");
    s.next_update = time_of("next_update");
    return s;
}

result<void> save_crl_state(const layout& l, const crl_state& s, std::optional<error>* late) {
    if (auto r = ensure_dir(l.crl_dir()); !r) return r;
    json::object o{{"crl_number", s.crl_number}};
    o["this_update"] = s.this_update ? json::value(format_time(*s.this_update)) : json::value(nullptr);
    o["next_update"] = s.next_update ? json::value(format_time(*s.next_update)) : json::value(nullptr);
    if (late) return write_file_atomic(l.crl_state(), json::serialize(o) + "\n", fs::perms(0644), *late);
    return write_file_atomic(l.crl_state(), json::serialize(o) + "\n");
}

std::optional<std::pair<std::string, std::string>> load_ocsp_responder_files(const layout& l) {
    auto cert = read_file(l.ocsp_dir() / "responder.crt");
    auto key = read_file(l.ocsp_dir() / "responder.key");
    if (!cert || !key) return std::nullopt;
    return std::make_pair(std::move(*cert), std::move(*key));
}

result<void> save_ocsp_responder_files(const layout& l, std::string_view cert_pem, std::string_view key_pem) {
    if (auto d = ensure_dir(l.ocsp_dir(), fs::perms(0700)); !d) return d.error();
    if (auto w = write_file_atomic(l.ocsp_dir() / "responder.key", key_pem, fs::perms(0600)); !w) return w.error();
    return write_file_atomic(l.ocsp_dir() / "responder.crt", cert_pem);
}

std::vector<std::string> ca_backup_members() {
    return {"certs/ca/ca.crt", "certs/ca/ca.key", "certs/ca/ca_metadata.json", "certs/ca/crl.pem", "certs/crl/crl.der",
            "certs/crl/crl_state.json", "certs/ocsp/responder.crt", "certs/ocsp/responder.key",
            // The audit checkpoint signer goes along, so that instances sharing one audit chain
            // (docs/high-availability.md) sign with the key its verification expects.
            "certs/audit/audit_signing.key", "certs/audit/audit_signing.pub"};
}

result<void> backup_ca(const layout& l, const fs::path& archive, std::optional<std::string_view> passphrase) {
    if (!ca_exists(l)) return make_error(errc::ca_missing, "no CA in " + l.ca_dir().string());
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& m : ca_backup_members()) {
        std::error_code ec;
        if (!fs::exists(l.data_dir / m, ec)) continue;
        auto data = read_file(l.data_dir / m);
        if (!data) return data.error();
        if (m == "certs/ca/ca.key" && passphrase && !key_pem_encrypted(*data)) {
            auto enc = encrypt_key_pem(*data, *passphrase);
            if (!enc) return enc.error();
            spdlog::warn(
                "ca.key on disk is not encrypted; the backup holds it encrypted with the configured passphrase");
            *data = std::move(*enc);
        }
        files.emplace_back(m, std::move(*data));
    }
    return write_file_atomic(archive, tar_pack(files), fs::perms(0600));
}

result<restore_report> restore_ca(const layout& l, const fs::path& archive, bool force,
                                  std::optional<std::string_view> passphrase) {
    auto bytes = read_file(archive);
    if (!bytes) return bytes.error();
    auto files = tar_unpack(*bytes);
    if (!files) return make_error(errc::invalid_argument, "not a CertMate CA backup: " + files.error().message);
    const auto allowed = ca_backup_members();
    std::string cert_pem;
    std::string key_pem;
    bool has_key = false;
    std::vector<std::string> seen;
    for (const auto& [name, data] : *files) {
        if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
            return make_error(errc::invalid_argument, "unexpected member in CA backup: " + name);
        // Two versions of a member would write (and leave on a failure) one that was never checked.
        if (std::find(seen.begin(), seen.end(), name) != seen.end())
            return make_error(errc::invalid_argument, "duplicate member in CA backup: " + name);
        seen.push_back(name);
        if (name == "certs/ca/ca.crt") cert_pem = data;
        if (name == "certs/ca/ca.key") {
            has_key = true;
            key_pem = data;
        }
    }
    if (cert_pem.empty() || !has_key) return make_error(errc::invalid_argument, "CA backup lacks ca.crt or ca.key");
    auto cert = load_cert_pem(cert_pem);
    if (!cert) return make_error(errc::invalid_argument, "CA backup holds an unreadable ca.crt");
    auto fingerprint = fingerprint_sha256(cert->get());
    if (!fingerprint) return fingerprint.error();
    restore_report rep;
    rep.fingerprint_sha256 = std::move(*fingerprint);
    // A key that does not belong to the certificate would leave a CA that never loads.
    if (auto ca = certificate_authority::load(cert_pem, key_pem, passphrase); !ca) {
        if (ca.error().code != errc::bad_passphrase || passphrase)
            return make_error(errc::invalid_argument, "CA backup is unusable: " + ca.error().message);
        spdlog::warn("CA backup holds an encrypted key and no passphrase is configured: restored unchecked");
    }
    // With a passphrase the CA key is only ever written encrypted.
    if (passphrase && !key_pem_encrypted(key_pem)) {
        auto enc = encrypt_key_pem(key_pem, *passphrase);
        if (!enc) return enc.error();
        for (auto& [name, data] : *files)
            if (name == "certs/ca/ca.key") data = *enc;
        rep.key_encrypted = true;
        spdlog::info("the backup's CA key is not encrypted; it is written encrypted with the configured passphrase");
    }

    if (ca_exists(l)) {
        auto existing = read_file(l.ca_cert());
        if (!existing) return existing.error();
        auto ec = load_cert_pem(*existing);
        bool same = false;
        if (ec) {
            auto existing_fp = fingerprint_sha256(ec->get());
            if (!existing_fp) return existing_fp.error();
            same = *existing_fp == rep.fingerprint_sha256;
        }
        if (!same && !force)
            return make_error(errc::ca_mismatch, "the data dir holds a different CA; use --force to replace it");
        rep.replaced = !same;
    }
    // The key first, the certificate last: a half-restored CA never pairs a new cert with an old key.
    std::stable_sort(files->begin(), files->end(), [](const auto& a, const auto& b) {
        auto rank = [](const std::string& n) { return is_key_member(n) ? 0 : n == "certs/ca/ca.crt" ? 2 : 1; };
        return rank(a.first) < rank(b.first);
    });
    for (const auto& [name, data] : *files) {
        const fs::path target = l.data_dir / name;
        // An audit signer of its own stays: the checkpoints of this data dir's log verify with it.
        if (name.starts_with("certs/audit/")) {
            auto held = read_file(target);
            if (held && *held != data) {
                spdlog::warn("the data dir has an audit signing key of its own: kept, the backup's not restored");
                continue;
            }
        }
        if (auto r = ensure_dir(target.parent_path(), fs::perms(0700)); !r) return r.error();
        if (auto r = write_file_atomic(target, data, is_key_member(name) ? fs::perms(0600) : fs::perms(0644)); !r)
            return r.error();
        ++rep.files;
    }
    spdlog::info("restored CA {} ({} files)", rep.fingerprint_sha256, rep.files);
    return rep;
}

} // namespace certmate::storage
