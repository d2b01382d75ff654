// The audit-line reader (storage/audit_log.hpp): the chain check over any text
// (verify_audit_text), and the log opened over the same bytes as a file (the tail read, a torn
// tail cut), queried, appended to and verified again. Never a crash; a log the reader accepts
// and then appends to still verifies.
#include "storage/audit_log.hpp"
#include "support/fuzz_support.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace certmate;
    const auto text = fuzz::as_text(data, size);
    const auto checked = storage::verify_audit_text(text);

    const auto file = fuzz::write_scratch("audit.log", text);
    const time_point t0 = std::chrono::sys_days{std::chrono::year{2026} / 11 / 30};
    auto log = storage::audit_log::open(file, [t0] { return t0; });
    if (!log) return 0;
    audit_query q;
    q.limit = 5;
    (void)(*log)->query(q);
    q.operation = "create";
    q.since = t0 - std::chrono::hours(24 * 365 * 30);
    (void)(*log)->query(q);
    audit_entry e;
    e.operation = "create";
    e.resource_id = "fuzz";
    e.user = "fuzz";
    if (!(*log)->append(e)) return 0;
    // A chain that verified before, continued by the log itself, still verifies.
    if (checked.ok && !(*log)->verify().ok) std::abort();
    return 0;
}
