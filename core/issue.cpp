#include "core/issue.hpp"

#include "core/keys.hpp"

#include <algorithm>
#include <chrono>

namespace certmate {

namespace {

struct eku_name {
    std::string_view name;
    int nid;
};
constexpr eku_name known_ekus[] = {
    {"clientAuth", NID_client_auth},
    {"serverAuth", NID_server_auth},
    {"emailProtection", NID_email_protect},
};

const eku_name* find_eku(std::string_view name) {
    for (const auto& e : known_ekus)
        if (e.name == name) return &e;
    return nullptr;
}

// The EKUs of the profile: clientAuth, then the allowed extras in a fixed order, no duplicates;
// serverAuth alone for a TLS server.
std::vector<const eku_name*> profile_ekus(const issue_request& req) {
    if (req.profile == cert_profile::tls_server) return {find_eku("serverAuth")};
    std::vector<const eku_name*> out{&known_ekus[0]};
    for (const auto& e : known_ekus)
        if (&e != &known_ekus[0] &&
            std::find(req.extra_eku.begin(), req.extra_eku.end(), e.name) != req.extra_eku.end())
            out.push_back(&e);
    return out;
}

// Adds an extension from its internal structure (encoded by OpenSSL, no config parsing).
result<void> add_struct_ext(X509* cert, int nid, void* value, int critical) {
    if (X509_add1_ext_i2d(cert, nid, value, critical, X509V3_ADD_APPEND) != 1)
        return ossl::fail(errc::crypto_failure, std::string("cannot add the ") + OBJ_nid2sn(nid) + " extension");
    return {};
}

result<ossl::general_name> uri_name(const std::string& uri) {
    return ia5_general_name(GEN_URI, uri, "cannot encode a URI");
}

// CRLDistributionPoints with one distribution point whose fullName is `url`.
result<ossl::crl_dist_points> make_cdp(const std::string& url) {
    auto gn = uri_name(url);
    if (!gn) return gn.error();
    ossl::crl_dist_points cdp(CRL_DIST_POINTS_new());
    ossl::dist_point dp(DIST_POINT_new());
    ossl::general_names full(GENERAL_NAMES_new());
    if (!cdp || !dp || !full || sk_GENERAL_NAME_push(full.get(), gn->get()) <= 0)
        return ossl::fail(errc::crypto_failure, "cannot build the CRL distribution point");
    gn->release();
    dp->distpoint = DIST_POINT_NAME_new();
    if (!dp->distpoint) return ossl::fail(errc::crypto_failure, "cannot build the CRL distribution point");
    dp->distpoint->type = 0; // fullName
    dp->distpoint->name.fullname = full.release();
    if (sk_DIST_POINT_push(cdp.get(), dp.get()) <= 0)
        return ossl::fail(errc::crypto_failure, "cannot build the CRL distribution point");
    dp.release();
    return cdp;
}

result<void> push_access(AUTHORITY_INFO_ACCESS* aia, int method_nid, const std::string& url) {
    auto gn = uri_name(url);
    if (!gn) return gn.error();
    ossl::access_description ad(ACCESS_DESCRIPTION_new());
    if (!ad) return ossl::fail(errc::crypto_failure, "cannot build the authority information access");
    ASN1_OBJECT_free(ad->method);
    ad->method = OBJ_nid2obj(method_nid);
    GENERAL_NAME_free(ad->location);
    ad->location = gn->release();
    if (sk_ACCESS_DESCRIPTION_push(aia, ad.get()) <= 0)
        return ossl::fail(errc::crypto_failure, "cannot build the authority information access");
    ad.release();
    return {};
}

std::string trim_slash(std::string url) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    return url;
}

} // namespace

result<void> validate_issue_request(const issue_request& req, const issuance_policy& policy) {
    if (req.validity_days < 0 || req.validity_days > policy.max_validity_days)
        return make_error(errc::invalid_argument,
                          "validity_days must be between 1 and " + std::to_string(policy.max_validity_days),
                          "validity_days");
    for (const auto& name : req.extra_eku) {
        const eku_name* e = find_eku(name);
        if (!e)
            return make_error(errc::invalid_argument,
                              "unknown extended key usage '" + name + "' (serverAuth or emailProtection)",
                              "extended_key_usage");
        if (e->nid != NID_client_auth && req.usage == cert_usage::api_mtls)
            return make_error(errc::invalid_argument,
                              "api-mtls certificates carry clientAuth only; " + name + " is allowed for vpn and other",
                              "extended_key_usage");
    }
    if (req.profile == cert_profile::tls_server) {
        if (!req.extra_eku.empty())
            return make_error(errc::invalid_argument, "a TLS server certificate carries serverAuth only",
                              "extended_key_usage");
        // RFC 6125 6.4.4: "a client MUST NOT seek a match for a reference identifier of CN-ID if the
        // presented identifiers include a DNS-ID, SRV-ID, URI-ID, or any application-specific
        // identifier types supported by the client": the names belong in the SANs.
        if (req.sans.dns.empty() && req.sans.ip.empty())
            return make_error(errc::invalid_argument, "a TLS server certificate needs a DNS name or IP address",
                              "subject_alt_names");
    }
    if (req.subject.common_name.empty())
        return make_error(errc::invalid_argument, "common_name is required", "common_name");
    if (auto n = build_name(req.subject); !n) return n.error();
    if (!req.sans.empty())
        if (auto g = build_general_names(req.sans); !g) return g.error();
    return {};
}

result<issued_cert> issue_certificate(const certificate_authority& ca, EVP_PKEY* subject_key, const issue_request& req,
                                      const issuance_policy& policy, time_point now) {
    using namespace std::chrono_literals;
    if (auto ok = validate_issue_request(req, policy); !ok) return ok.error();
    if (auto ok = check_allowed_key(subject_key); !ok) return ok.error();
    auto serial = decimal_to_asn1_integer(req.serial_decimal);
    if (!serial) return serial.error();
    auto name = build_name(req.subject);
    if (!name) return name.error();
    ossl::general_names sans;
    if (!req.sans.empty()) {
        auto g = build_general_names(req.sans);
        if (!g) return g.error();
        sans = std::move(*g);
    }

    // Validity: notBefore backdated one minute for clock skew; notAfter capped by the policy and,
    // since RFC 5280 6.1.3 checks every certificate of the path, by the CA's own notAfter.
    int days = req.validity_days > 0 ? req.validity_days : policy.default_validity_days;
    days = std::clamp(days, 1, std::max(1, policy.max_validity_days));
    const time_point ca_end = ca.not_after();
    if (now >= ca_end) return make_error(errc::crypto_failure, "the CA certificate has expired");
    const time_point nb = std::chrono::floor<std::chrono::seconds>(now - 60s);
    const time_point na =
        std::min<time_point>(std::chrono::floor<std::chrono::seconds>(now + std::chrono::days(days)), ca_end);

    auto draft =
        new_v3_certificate(serial->get(), ca.cert(), name->get(), nb, na, subject_key, "cannot build the certificate");
    if (!draft) return draft.error();
    auto& [cert, ctx] = *draft;

    issued_cert out;
    const bool rsa = EVP_PKEY_get_base_id(subject_key) == EVP_PKEY_RSA;
    out.key_usage = {"digitalSignature"};
    if (rsa) out.key_usage.emplace_back("keyEncipherment");
    std::string eku_conf;
    for (const eku_name* e : profile_ekus(req)) {
        if (!eku_conf.empty()) eku_conf += ',';
        eku_conf += e->name;
        out.extended_key_usage.emplace_back(e->name);
    }

    // RFC 5280 4.2.1.9: "This extension MAY appear as a critical or non-critical extension in
    // end entity certificates." We mark it critical, CA:FALSE, whatever the CSR asked for.
    if (auto r = add_config_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"); !r)
        return r.error();
    // RFC 5280 4.2.1.3: "When present, conforming CAs SHOULD mark this extension as critical."
    if (auto r = add_config_extension(cert.get(), &ctx, NID_key_usage,
                                      rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
        !r)
        return r.error();
    if (auto r = add_config_extension(cert.get(), &ctx, NID_ext_key_usage, eku_conf.c_str()); !r) return r.error();
    if (sans)
        if (auto r = add_struct_ext(cert.get(), NID_subject_alt_name, sans.get(), 0); !r) return r.error();
    // RFC 5280 4.2.1.2: "For end entity certificates, subject key identifiers SHOULD be derived
    // from the public key."
    if (auto r = add_config_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash"); !r) return r.error();
    // RFC 5280 4.2.1.1: "The keyIdentifier field of the authorityKeyIdentifier extension MUST be
    // included in all certificates generated by conforming CAs to facilitate certification path
    // construction."
    if (auto r = add_config_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"); !r)
        return r.error();

    const std::string base = trim_slash(policy.public_url);
    auto cdp = make_cdp(base + "/crl.der");
    if (!cdp) return cdp.error();
    if (auto r = add_struct_ext(cert.get(), NID_crl_distribution_points, cdp->get(), 0); !r) return r.error();
    ossl::authority_info_access aia(AUTHORITY_INFO_ACCESS_new());
    if (!aia) return ossl::fail(errc::crypto_failure, "cannot build the authority information access");
    if (auto r = push_access(aia.get(), NID_ad_OCSP, base + "/ocsp"); !r) return r.error();
    if (auto r = push_access(aia.get(), NID_ad_ca_issuers, base + "/ca.crt"); !r) return r.error();
    if (auto r = add_struct_ext(cert.get(), NID_info_access, aia.get(), 0); !r) return r.error();

    if (X509_sign(cert.get(), ca.key(), ca.digest()) <= 0)
        return ossl::fail(errc::crypto_failure, "cannot sign the certificate");

    auto pem = cert_to_pem(cert.get());
    if (!pem) return pem.error();
    auto der = cert_to_der(cert.get());
    if (!der) return der.error();
    auto serial_text = serial_to_decimal(X509_get0_serialNumber(cert.get()));
    if (!serial_text) return serial_text.error();
    auto fingerprint = fingerprint_sha256(cert.get());
    if (!fingerprint) return fingerprint.error();
    out.pem = std::move(*pem);
    out.der = std::move(*der);
    out.serial_decimal = std::move(*serial_text);
    out.fingerprint_sha256 = std::move(*fingerprint);
    out.not_before = nb;
    out.not_after = na;
    out.cert = std::move(cert);
    return out;
}

void record_issued(cert_record& rec, const issued_cert& issued, time_point created_at) {
    rec.serial_number = issued.serial_decimal;
    rec.key_usage = issued.key_usage;
    rec.extended_key_usage = issued.extended_key_usage;
    rec.created_at = created_at;
    rec.not_before = issued.not_before;
    rec.expires_at = issued.not_after;
    rec.fingerprint_sha256 = issued.fingerprint_sha256;
}

} // namespace certmate
