// Asio (with its SSL part), Beast and Boost.URL compiled once (BOOST_ASIO_SEPARATE_COMPILATION /
// BOOST_BEAST_SEPARATE_COMPILATION; Boost.URL has no library in Debian's Boost 1.81: its sources here).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
#include <boost/url/src.hpp>
