// coro_support.hpp - small helpers for the library's Asio coroutines.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/this_coro.hpp>

namespace genesis::launch::detail {

// True once the awaiting coroutine's cancellation slot was triggered (any type).
inline boost::asio::awaitable<bool> coroutine_cancelled() {
    boost::asio::cancellation_state state = co_await boost::asio::this_coro::cancellation_state;
    co_return state.cancelled() != boost::asio::cancellation_type::none;
}

}  // namespace genesis::launch::detail
