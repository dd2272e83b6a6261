/*
 * srtp.h -- libsrtp 3 API shim over Debian's libsrtp2 (2.5).
 *
 * Why this exists
 * ---------------
 * mediasoup 3.27 is written against versatica's libsrtp 3 fork, which its
 * meson wrap downloads from GitHub. That fork is not packaged by Debian and
 * GitHub is not reachable from the machines we build on, but Debian bookworm
 * ships libsrtp2 2.5 (libsrtp2-dev). The cryptography is the same; only the
 * C API changed between 2.x and 3.x. This header is found by mediasoup's
 * `#include <srtp.h>` (the libsrtp3 subproject puts this directory on the
 * include path) and emulates exactly the subset of the 3.x API that
 * mediasoup 3.27.1 uses (see worker/src/RTC/SrtpSession.cpp and
 * worker/src/DepLibSRTP.cpp):
 *
 *   - srtp_policy_t is an opaque handle in 3.x (created/destroyed by
 *     srtp_policy_create/srtp_policy_destroy and filled by setters), whereas
 *     in 2.x it is a plain struct. We rename the 2.x struct to
 *     srtp2_policy_t while including the real header and make srtp_policy_t
 *     a pointer to it, so the unchanged 2.x srtp_create() accepts it.
 *   - srtp_protect/unprotect(_rtcp) in 3.x take separate input and output
 *     buffers with size_t lengths (and an MKI index); 2.x works in place with
 *     an int length. The wrappers copy into the output buffer (if it is a
 *     different one) and then work in place there.
 *   - srtp_stream_remove() is 2.x's srtp_remove_stream().
 *   - 3.x added two error codes that mediasoup maps to strings.
 *
 * MKI is not supported (mediasoup never uses it): a non-empty MKI or a
 * non-zero MKI index is rejected with srtp_err_status_bad_param.
 *
 * This header is C++ only; mediasoup's worker is C++.
 */

#ifndef SECURECONNECT_SRTP3_SHIM_H
#define SECURECONNECT_SRTP3_SHIM_H

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

// Include the real libsrtp2 header with its policy struct renamed, so that
// the name srtp_policy_t is free for the 3.x-style handle type below. The
// functions declared there are extern "C", so the parameter type name does
// not affect linking.
#define srtp_policy_t srtp2_policy_t
#include <srtp2/srtp.h>
#undef srtp_policy_t

// 3.x: opaque policy handle.
typedef srtp2_policy_t* srtp_policy_t;

// 3.x error codes that do not exist in 2.x (2.x stops at pkt_idx_adv = 27).
// The values follow the 3.x numbering.
static constexpr srtp_err_status_t srtp_err_status_buffer_small =
  static_cast<srtp_err_status_t>(28);
static constexpr srtp_err_status_t srtp_err_status_cryptex_err =
  static_cast<srtp_err_status_t>(29);

namespace secureconnect_srtp3_shim
{
	// Longest master key + salt of any profile (AES-256-GCM: 32 + 12).
	// Rounded up generously.
	constexpr size_t MaxKeyAndSaltLen{ 64 };

	// The policy and its key buffer live in one allocation; the 2.x struct is
	// the first member so a pointer to it is also a pointer to the holder.
	struct PolicyHolder
	{
		srtp2_policy_t policy;
		unsigned char key[MaxKeyAndSaltLen];
	};

	inline PolicyHolder* Holder(srtp_policy_t policy)
	{
		return reinterpret_cast<PolicyHolder*>(policy);
	}

	inline srtp_err_status_t PolicyCreate(srtp_policy_t* policy)
	{
		if (policy == nullptr)
		{
			return srtp_err_status_bad_param;
		}

		auto* holder = new (std::nothrow) PolicyHolder();

		if (holder == nullptr)
		{
			return srtp_err_status_alloc_fail;
		}

		// Zero everything: no MKI key array, no encrypted header extensions,
		// no next element, default (0 => 128) replay window.
		std::memset(holder, 0, sizeof(PolicyHolder));
		holder->policy.key = holder->key;
		*policy            = &holder->policy;

		return srtp_err_status_ok;
	}

	inline void PolicyDestroy(srtp_policy_t policy)
	{
		if (policy == nullptr)
		{
			return;
		}

		auto* holder = Holder(policy);

		// Do not leave key material in freed memory.
		std::memset(holder->key, 0, sizeof(holder->key));
		delete holder;
	}

	inline srtp_err_status_t PolicySetSsrc(srtp_policy_t policy, srtp_ssrc_t ssrc)
	{
		if (policy == nullptr)
		{
			return srtp_err_status_bad_param;
		}

		policy->ssrc = ssrc;

		return srtp_err_status_ok;
	}

	inline srtp_err_status_t PolicySetProfile(srtp_policy_t policy, srtp_profile_t profile)
	{
		if (policy == nullptr)
		{
			return srtp_err_status_bad_param;
		}

		srtp_err_status_t err = srtp_crypto_policy_set_from_profile_for_rtp(&policy->rtp, profile);

		if (err != srtp_err_status_ok)
		{
			return err;
		}

		return srtp_crypto_policy_set_from_profile_for_rtcp(&policy->rtcp, profile);
	}

	// 3.x passes key and salt separately; 2.x expects them concatenated in
	// policy->key (which is what srtp_append_salt_to_key() does in 2.x).
	inline srtp_err_status_t PolicyAddKey(
	  srtp_policy_t policy,
	  const uint8_t* key,
	  size_t keyLen,
	  const uint8_t* salt,
	  size_t saltLen,
	  const uint8_t* /*mki*/,
	  size_t mkiLen)
	{
		if (policy == nullptr || key == nullptr || (saltLen > 0 && salt == nullptr))
		{
			return srtp_err_status_bad_param;
		}

		if (mkiLen != 0 || keyLen + saltLen > MaxKeyAndSaltLen)
		{
			return srtp_err_status_bad_param;
		}

		auto* holder = Holder(policy);

		std::memcpy(holder->key, key, keyLen);

		if (saltLen > 0)
		{
			std::memcpy(holder->key + keyLen, salt, saltLen);
		}

		policy->key = holder->key;

		return srtp_err_status_ok;
	}

	inline srtp_err_status_t PolicySetAllowRepeatTx(srtp_policy_t policy, bool allow)
	{
		if (policy == nullptr)
		{
			return srtp_err_status_bad_param;
		}

		policy->allow_repeat_tx = allow ? 1 : 0;

		return srtp_err_status_ok;
	}

	inline srtp_err_status_t PolicySetWindowSize(srtp_policy_t policy, size_t windowSize)
	{
		if (policy == nullptr)
		{
			return srtp_err_status_bad_param;
		}

		policy->window_size = static_cast<unsigned long>(windowSize);

		return srtp_err_status_ok;
	}

	// Common body of the four packet operations: copy input to the output
	// buffer if they differ, then call the in-place 2.x function there.
	// `maxGrowth` is how many bytes the 2.x call may append.
	template<typename InPlaceFn>
	inline srtp_err_status_t Transform(
	  InPlaceFn fn,
	  srtp_t ctx,
	  const uint8_t* in,
	  size_t inLen,
	  uint8_t* out,
	  size_t* outLen,
	  size_t maxGrowth)
	{
		if (ctx == nullptr || in == nullptr || out == nullptr || outLen == nullptr)
		{
			return srtp_err_status_bad_param;
		}

		// 2.x uses int lengths.
		if (inLen > 0x7fffffff - maxGrowth)
		{
			return srtp_err_status_bad_param;
		}

		if (*outLen < inLen + maxGrowth)
		{
			return srtp_err_status_buffer_small;
		}

		if (out != in)
		{
			std::memmove(out, in, inLen);
		}

		int len = static_cast<int>(inLen);

		const srtp_err_status_t err = fn(ctx, out, &len);

		if (err != srtp_err_status_ok)
		{
			return err;
		}

		*outLen = static_cast<size_t>(len);

		return srtp_err_status_ok;
	}

	inline srtp_err_status_t Protect(
	  srtp_t ctx, const uint8_t* rtp, size_t rtpLen, uint8_t* srtp, size_t* srtpLen, size_t mkiIndex)
	{
		if (mkiIndex != 0)
		{
			return srtp_err_status_bad_param;
		}

		// 2.x srtp_protect() may append up to SRTP_MAX_TRAILER_LEN bytes.
		return Transform(::srtp_protect, ctx, rtp, rtpLen, srtp, srtpLen, SRTP_MAX_TRAILER_LEN);
	}

	inline srtp_err_status_t Unprotect(
	  srtp_t ctx, const uint8_t* srtp, size_t srtpLen, uint8_t* rtp, size_t* rtpLen)
	{
		// Unprotecting only shrinks the packet.
		return Transform(::srtp_unprotect, ctx, srtp, srtpLen, rtp, rtpLen, 0);
	}

	inline srtp_err_status_t ProtectRtcp(
	  srtp_t ctx, const uint8_t* rtcp, size_t rtcpLen, uint8_t* srtcp, size_t* srtcpLen, size_t mkiIndex)
	{
		if (mkiIndex != 0)
		{
			return srtp_err_status_bad_param;
		}

		// 2.x srtp_protect_rtcp() may append the SRTCP index (4 bytes) plus
		// up to SRTP_MAX_TRAILER_LEN bytes.
		return Transform(
		  ::srtp_protect_rtcp, ctx, rtcp, rtcpLen, srtcp, srtcpLen, SRTP_MAX_TRAILER_LEN + 4);
	}

	inline srtp_err_status_t UnprotectRtcp(
	  srtp_t ctx, const uint8_t* srtcp, size_t srtcpLen, uint8_t* rtcp, size_t* rtcpLen)
	{
		return Transform(::srtp_unprotect_rtcp, ctx, srtcp, srtcpLen, rtcp, rtcpLen, 0);
	}

	// `ssrc` is in network byte order, as in both 2.x and 3.x.
	inline srtp_err_status_t StreamRemove(srtp_t session, uint32_t ssrc)
	{
		return ::srtp_remove_stream(session, ssrc);
	}
} // namespace secureconnect_srtp3_shim

// Map the 3.x names used by mediasoup onto the shim. These are defined last
// so the shim bodies above still reach the real 2.x functions.
#define srtp_policy_create             secureconnect_srtp3_shim::PolicyCreate
#define srtp_policy_destroy            secureconnect_srtp3_shim::PolicyDestroy
#define srtp_policy_set_ssrc           secureconnect_srtp3_shim::PolicySetSsrc
#define srtp_policy_set_profile        secureconnect_srtp3_shim::PolicySetProfile
#define srtp_policy_add_key            secureconnect_srtp3_shim::PolicyAddKey
#define srtp_policy_set_allow_repeat_tx secureconnect_srtp3_shim::PolicySetAllowRepeatTx
#define srtp_policy_set_window_size    secureconnect_srtp3_shim::PolicySetWindowSize
#define srtp_protect                   secureconnect_srtp3_shim::Protect
#define srtp_unprotect                 secureconnect_srtp3_shim::Unprotect
#define srtp_protect_rtcp              secureconnect_srtp3_shim::ProtectRtcp
#define srtp_unprotect_rtcp            secureconnect_srtp3_shim::UnprotectRtcp
#define srtp_stream_remove             secureconnect_srtp3_shim::StreamRemove

// srtp_create(srtp_t*, srtp_policy_t) needs no wrapper: the 2.x function
// takes `const srtp2_policy_t*`, which is what srtp_policy_t now is.

#endif
