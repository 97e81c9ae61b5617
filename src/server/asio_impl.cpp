// Boost.Asio and Boost.Beast are built once, here (BOOST_*_SEPARATE_COMPILATION is defined
// for the whole project), instead of in every file that includes them.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
