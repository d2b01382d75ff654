// JSON answers in tests: the body as an object, a string field; failures stop the test case.
#pragma once

#include "support/http_client.hpp"

#include <boost/json/object.hpp>
#include <boost/test/unit_test.hpp>

#include <string>

namespace certmate::test {

inline boost::json::object obj(const http_reply& r) {
    BOOST_TEST_INFO("body: " << r.body);
    auto v = r.json();
    BOOST_REQUIRE(v.is_object());
    return v.as_object();
}

inline std::string str(const boost::json::object& o, const char* key) {
    auto it = o.find(key);
    BOOST_REQUIRE_MESSAGE(it != o.end(), "missing field " << key);
    BOOST_REQUIRE_MESSAGE(it->value().is_string(), key << " is not a string");
    return std::string(it->value().as_string());
}

// An error answer: its status, JSON `code` and, when given, `field`.
inline void expect_code(const http_reply& r, unsigned status, const std::string& code, const std::string& field = {}) {
    BOOST_TEST_INFO("body: " << r.body);
    BOOST_TEST(r.status == status);
    auto o = obj(r);
    BOOST_TEST(str(o, "code") == code);
    if (!field.empty()) BOOST_TEST(str(o, "field") == field);
}

} // namespace certmate::test
