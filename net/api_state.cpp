#include "net/api.hpp"
#include "net/conn_limits.hpp"

#include "core/ossl.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <openssl/x509.h>

namespace certmate::net {

void crl_publisher::kick(bool periodic) {
    asio::co_spawn(core_.strand(), build_loop(periodic), [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            spdlog::error("CRL build loop failed: {}", ex.what());
        }
    });
}

asio::awaitable<void> crl_publisher::build_loop(bool periodic) {
    using crl_ptr = std::shared_ptr<const built_crl>;
    for (;;) {
        std::uint64_t gen = 0;
        auto stage_fn = [&](cert_service& s) -> std::optional<staged<crl_ptr>> {
            gen = requested_.load();
            const auto margin = std::chrono::duration_cast<std::chrono::seconds>(s.config().crl_validity) / 4;
            std::optional<staged<crl_ptr>> out;
            if (!periodic || holds_.load() == 0 || s.crl_due(margin)) out = s.stage_crl_build();
            // Nothing to build and none running: the CRL served lists every change noted so far
            // (one that left the entries as they were, e.g. a batch revoke job of failed rows).
            if (!out && s.crl_settled()) published(gen);
            return out;
        };
        auto staged = co_await core_.in_core(stage_fn);
        if (!staged) co_return; // nothing due, or a running build will pick the change up
        bool again = false;
        auto after = [&](cert_service& s, result<crl_ptr>& out) {
            if (!out) {
                // Refused for a change of another instance not applied yet: again only if one
                // was applied meanwhile (otherwise apply_changes kicks). Other failures: the
                // minute timer retries; no tight loop on a full disk.
                if (out.error().code == errc::conflict) again = s.crl_rebuild_needed();
                return;
            }
            // Settled: changes noted while it ran left the entries as they were; it lists them too.
            published(s.crl_settled() ? requested_.load() : gen);
            again = s.crl_rebuild_needed();
        };
        // The commit hands the work's result on unchanged: ok is whether the build succeeded.
        auto out = co_await core_.finish_staged<crl_ptr>(*staged, after);
        // A build deferred for another instance's change is not a failed one.
        if (out || out.error().code != errc::conflict) metrics_.crl_built(out.has_value());
        if (!again) co_return;
        // Going on for changes committed during the build: their own kicks found it running and
        // left them to it, so the holds of a batch revoke (periodic only) no longer apply.
        periodic = false;
        if (acks_before_publish()) {
            bool pause = false;
            {
                // Under the waiters' lock: a waiter registering after this sees pausing_ and kicks.
                std::lock_guard lock(wait_mu_);
                if (waiters_.empty()) {
                    ++pausing_;
                    pause = true;
                }
            }
            if (pause) {
                asio::steady_timer t(co_await asio::this_coro::executor);
                t.expires_after(build_pace);
                boost::system::error_code ec;
                co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                --pausing_;
            }
        }
    }
}

void crl_publisher::apply_changes(std::vector<store_change> changes) {
    core_.post([this, changes = std::move(changes)](cert_service& s) mutable {
        auto step = s.apply_changes(std::move(changes));
        if (step)
            asio::co_spawn(core_.strand(), serve_published(std::move(*step)), [](std::exception_ptr e) {
                if (!e) return;
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    spdlog::error("serving another instance's CRL failed: {}", ex.what());
                }
            });
        if (s.crl_rebuild_needed()) kick();
    });
}

asio::awaitable<void> crl_publisher::serve_published(staged<std::shared_ptr<const built_crl>> step) {
    auto after = [](result<std::shared_ptr<const built_crl>>&) {};
    co_await core_.finish_staged<std::shared_ptr<const built_crl>>(step, after);
}

void crl_publisher::published(std::uint64_t gen) {
    std::uint64_t seen = published_.load();
    while (seen < gen && !published_.compare_exchange_weak(seen, gen)) {}
    std::vector<std::shared_ptr<asio::steady_timer>> ready;
    {
        // published_ is set before the lock: a waiter registering after this finds it set.
        std::lock_guard lock(wait_mu_);
        auto end = waiters_.upper_bound(published_.load());
        for (auto it = waiters_.begin(); it != end; it = waiters_.erase(it)) ready.push_back(std::move(it->second));
    }
    // Each timer is touched only on its own (strand) executor.
    for (auto& t : ready) asio::post(t->get_executor(), [t] { t->cancel(); });
}

// Group commit (docs/architecture.md): a revocation committed while a build runs is taken by the
// next build, which starts when the running one ends; its waiters wake when that CRL is out.
asio::awaitable<bool> crl_publisher::wait_published(std::uint64_t gen, std::chrono::milliseconds timeout) {
    if (published_.load() >= gen) co_return true;
    auto t = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
    t->expires_after(timeout);
    bool paused = false;
    {
        std::lock_guard lock(wait_mu_);
        if (published_.load() >= gen) co_return true;
        waiters_.emplace(gen, t);
        paused = pausing_.load() > 0;
    }
    if (paused) kick(); // a paced build loop is in its pause: this request ends it
    boost::system::error_code ec;
    co_await t->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (published_.load() >= gen) co_return true;
    {
        std::lock_guard lock(wait_mu_);
        auto [lo, hi] = waiters_.equal_range(gen);
        for (auto it = lo; it != hi; ++it)
            if (it->second == t) {
                waiters_.erase(it);
                break;
            }
    }
    metrics_.crl_wait_timed_out();
    co_return false;
}

// The CRL side of acknowledging a revocation once durable (docs/architecture.md "CRL
// publication"): a CRL request arriving after the acknowledgement finds its generation here.
asio::awaitable<bool> crl_publisher::wait_acknowledged(std::chrono::milliseconds timeout) {
    const std::uint64_t gen = acknowledged_.load();
    if (published_.load() >= gen) co_return true;
    co_return co_await wait_published(gen, timeout);
}

std::size_t crl_publisher::revoked_count(const std::shared_ptr<const built_crl>& crl) {
    {
        std::lock_guard lock(count_mu_);
        if (counted_valid_ && counted_number_ == crl->crl_number) return counted_;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(crl->der.data());
    ossl::x509_crl parsed(d2i_X509_CRL(nullptr, &p, static_cast<long>(crl->der.size())));
    std::size_t n = 0;
    if (parsed) {
        if (auto* revoked = X509_CRL_get_REVOKED(parsed.get()))
            n = static_cast<std::size_t>(sk_X509_REVOKED_num(revoked));
    } else {
        spdlog::error("current CRL does not parse: {}", ossl::drain_errors());
    }
    std::lock_guard lock(count_mu_);
    counted_number_ = crl->crl_number;
    counted_ = n;
    counted_valid_ = true;
    return n;
}

bool denial_auditor::admit(const std::string& client, std::chrono::steady_clock::time_point now,
                           std::uint64_t& suppressed) {
    constexpr auto window = std::chrono::minutes(1);
    std::lock_guard lock(mu_);
    if (slots_.size() > 10000) {
        for (auto it = slots_.begin(); it != slots_.end();)
            it = now - it->second.last >= window ? slots_.erase(it) : std::next(it);
        if (slots_.size() > 10000) slots_.clear();
    }
    auto [it, fresh] = slots_.try_emplace(client);
    slot& s = it->second;
    if (!fresh && now - s.last < window) {
        ++s.suppressed;
        return false;
    }
    if (now - window_start_ >= window) {
        window_start_ = now;
        lines_in_window_ = 0;
    }
    if (lines_in_window_ >= max_lines_per_window) {
        ++over_budget_;
        return false;
    }
    ++lines_in_window_;
    suppressed = s.suppressed + over_budget_;
    over_budget_ = 0;
    s.suppressed = 0;
    s.last = now;
    return true;
}

std::string denial_client_key(std::string_view ip, std::string_view user) {
    return address_key(ip) + "|" + std::string(user);
}

asio::awaitable<renewal_summary> run_renewal_sweep(api_state& api, const principal& who) {
    auto& core = api.core;
    auto begin_fn = [](cert_service& s) { return s.begin_renewal_sweep(); };
    auto sweep = co_await core.in_core(begin_fn);
    auto& sum = sweep.summary;
    const bool revokes_old = core.view().config().revoke_superseded;
    std::uint64_t gen = 0;
    for (const auto& id : sweep.plan) {
        auto stage = [&](cert_service& s) { return s.stage_sweep_renewal(id, who); };
        auto after = [&](result<cert_view>& out) {
            if (out && revokes_old) gen = api.crl.note_change();
        };
        auto r = co_await core.run_staged<cert_view>(stage, after);
        cert_service::count_renewal(sum, id, r);
    }
    sum.finished_at = core.view().now();
    api.stats.renewals(sum.renewed, sum.failed);
    if (gen) {
        api.crl.kick();
        co_await api.crl.wait_published(gen, std::chrono::milliseconds(3000));
    }
    auto finish = [&] { core.view().finish_renewal_sweep(sum); };
    co_await core.in_pool(finish);
    co_return std::move(sweep.summary);
}

std::string call::param(std::string_view name) const {
    for (const auto& [k, v] : params)
        if (k == name) return v;
    return {};
}

std::optional<std::string> call::query_value(std::string_view name) const {
    for (const auto& [k, v] : query)
        if (k == name) return v;
    return std::nullopt;
}

core_access& call::core() { return api.core; }

} // namespace certmate::net
