// Copying one repository into another through the port (issue 18: `certmate db import` and
// `db export` move a CA between the file system store and PostgreSQL, in both directions).
// Thread-safety: blocking; run with no server writing either store.
#pragma once

#include "core/cert_repository.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace certmate {

struct copy_report {
    std::size_t certificates = 0; // in the source
    std::size_t copied = 0;       // written to the target
    std::size_t already = 0;      // the target held them identically (a repeated import)
    std::size_t serials = 0;      // every serial of every certificate (history included), checked in the target
    std::size_t jobs = 0;
    std::uint64_t crl_number = 0;
};

// Copies certificates (record, certificate, key, CSR), the CRL state and the published CRL, the
// OCSP responder, the sweep record and the jobs of `from` into `to`, then loads `to` again and
// checks that it holds every certificate of `from` with the same record, files and serials.
// Idempotent: what `to` already holds identically is left alone; a certificate `to` holds
// differently is errc::conflict naming it, found before anything is written. A CRL number in `to`
// above the source's is kept (the number never goes back).
result<copy_report> copy_store(cert_repository& from, cert_repository& to, unsigned threads);

} // namespace certmate
