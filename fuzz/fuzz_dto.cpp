// Every JSON request body (net/dto.hpp): each DTO read from the same bytes, the create body as the
// service takes it (create_request_from_json), and the batch body readers (net/batch_parse.hpp)
// with each row read as a create body, as POST /api/client-certs/batch does. Failures are
// errc::invalid_argument (or a code the create reader names), never a crash or an exception.
#include "net/api.hpp"
#include "net/batch_parse.hpp"
#include "net/dto.hpp"
#include "support/fuzz_support.hpp"

#include <boost/json/parse.hpp>

#include <cstdlib>

namespace {

using namespace certmate;

template <class T>
void read_as(std::string_view body) {
    auto r = net::dto::parse<T>(body);
    if (!r && r.error().code != errc::invalid_argument) std::abort();
}

void create_rows(const result<net::batch_rows>& rows) {
    if (!rows) {
        if (rows.error().code != errc::invalid_argument) std::abort();
        return;
    }
    for (const auto& e : rows->errors)
        if (e.row == 0 || e.row > rows->rows.size()) std::abort();
    for (const auto& row : rows->rows) (void)net::create_request_from_json(row);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto body = fuzz::as_text(data, size);
    namespace dto = net::dto;
    read_as<dto::create_cert>(body);
    read_as<dto::update_cert>(body);
    read_as<dto::revoke>(body);
    read_as<dto::renew>(body);
    read_as<dto::pkcs12>(body);
    read_as<dto::ocsp_status>(body);
    boost::system::error_code ec;
    const auto v = boost::json::parse(body, ec);
    if (!ec) (void)net::create_request_from_json(v);
    create_rows(net::parse_batch_json(body, 1000));
    create_rows(net::parse_batch_csv(body, 1000));
    return 0;
}
