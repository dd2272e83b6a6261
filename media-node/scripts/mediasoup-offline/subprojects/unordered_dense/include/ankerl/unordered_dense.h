/*
 * ankerl/unordered_dense.h -- minimal stand-in for martinus/unordered_dense.
 *
 * Why this exists
 * ---------------
 * mediasoup uses ankerl::unordered_dense (a fast open-addressing hash map)
 * purely as a drop-in replacement for the standard unordered containers. Its
 * meson wrap downloads it from GitHub, it is not packaged by Debian bookworm,
 * and GitHub is not reachable from the machines we build on. mediasoup 3.27.1
 * only uses `map`, `set` and `hash` with the std-compatible subset of their
 * interface (find/emplace/try_emplace/erase/contains/iteration...), so
 * aliases over std::unordered_map / std::unordered_set are enough (it
 * compiles unchanged, and mediasoup's own test suite passes 202/202 with it;
 * see media-node/scripts/test-mediasoup.mjs). Differences: somewhat slower;
 * iteration order differs (ankerl iterates in insertion order, std in hash
 * order); iterators and references are more stable than in the real
 * container, never less.
 *
 * `hash<T>` mixes integral keys (std::hash is the identity for integers in
 * libstdc++, and mediasoup combines several such per-field hashes, e.g. in
 * PortManager and TransportTuple) and defers to std::hash otherwise.
 */

#ifndef SECURECONNECT_ANKERL_UNORDERED_DENSE_SHIM_H
#define SECURECONNECT_ANKERL_UNORDERED_DENSE_SHIM_H

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace ankerl
{
	namespace unordered_dense
	{
		namespace detail
		{
			// 64x64 -> 128 bit multiply, folded (the "mum" mix used by wyhash).
			inline uint64_t Mix(uint64_t a, uint64_t b) noexcept
			{
				const __uint128_t r = static_cast<__uint128_t>(a) * static_cast<__uint128_t>(b);

				return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
			}
		} // namespace detail

		template<typename T, typename Enable = void>
		struct hash : std::hash<T>
		{
		};

		template<typename T>
		struct hash<T, std::enable_if_t<std::is_integral_v<T>>>
		{
			size_t operator()(T value) const noexcept
			{
				return static_cast<size_t>(
				  detail::Mix(static_cast<uint64_t>(value), UINT64_C(0x9E3779B97F4A7C15)));
			}
		};

		template<
		  class Key,
		  class T,
		  class Hash      = hash<Key>,
		  class KeyEqual  = std::equal_to<Key>,
		  class Allocator = std::allocator<std::pair<const Key, T>>>
		using map = std::unordered_map<Key, T, Hash, KeyEqual, Allocator>;

		template<
		  class Key,
		  class Hash      = hash<Key>,
		  class KeyEqual  = std::equal_to<Key>,
		  class Allocator = std::allocator<Key>>
		using set = std::unordered_set<Key, Hash, KeyEqual, Allocator>;
	} // namespace unordered_dense
} // namespace ankerl

#endif
