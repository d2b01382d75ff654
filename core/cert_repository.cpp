#include "core/cert_repository.hpp"

#include <spdlog/spdlog.h>

namespace certmate {

result<void> cert_repository::create_many(const std::vector<new_cert>& certs) {
    for (const auto& c : certs)
        if (auto r = create(*c.rec, c.files); !r)
            return make_error(r.error().code, c.rec->identifier + ": " + r.error().message, r.error().field);
    return {};
}

result<std::shared_ptr<const ocsp_responder>> ensure_ocsp_responder(cert_repository& repo,
                                                                    const certificate_authority& ca, time_point now,
                                                                    std::chrono::hours renew_before,
                                                                    const rng_fn& rng) {
    if (auto kept = repo.load_ocsp_responder()) {
        auto r = load_ocsp_responder(ca, kept->first, kept->second);
        if (r && r->not_after - renew_before > now)
            return std::shared_ptr<const ocsp_responder>(std::make_shared<ocsp_responder>(std::move(*r)));
        if (!r) spdlog::warn("the kept OCSP responder is unusable ({}); issuing a new one", r.error().message);
    }
    auto r = issue_ocsp_responder(ca, now, rng);
    if (!r) return r.error();
    if (auto w = repo.save_ocsp_responder(r->cert_pem, r->key_pem); !w) return w.error();
    spdlog::info("issued OCSP responder certificate valid until {}", format_time(r->not_after));
    return std::shared_ptr<const ocsp_responder>(std::make_shared<ocsp_responder>(std::move(*r)));
}

} // namespace certmate
