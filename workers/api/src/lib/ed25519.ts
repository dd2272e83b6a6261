// Decides whether 32 bytes are a valid Ed25519 public key (RFC 8032 §5.1.3
// point decoding). Web Crypto in workerd imports any 32 bytes without checking.

const P = 2n ** 255n - 19n;
const D = (-121665n * modInverse(121666n)) % P;
const SQRT_M1 = modPow(2n, (P - 1n) / 4n);

function mod(a: bigint): bigint {
	const r = a % P;
	return r >= 0n ? r : r + P;
}

function modPow(base: bigint, exponent: bigint): bigint {
	let result = 1n;
	let b = mod(base);
	let e = exponent;
	while (e > 0n) {
		if (e & 1n) result = (result * b) % P;
		b = (b * b) % P;
		e >>= 1n;
	}
	return result;
}

function modInverse(a: bigint): bigint {
	return modPow(a, P - 2n);
}

export function isEd25519PublicKey(bytes: Uint8Array): boolean {
	if (bytes.length !== 32) return false;
	let y = 0n;
	for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(bytes[i] ?? 0);
	const sign = y >> 255n;
	y &= (1n << 255n) - 1n;
	if (y >= P) return false;
	const y2 = mod(y * y);
	const u = mod(y2 - 1n);
	const v = mod(D * y2 + 1n);
	// x = (u/v)^((p+3)/8), with the square-root fix-ups of RFC 8032.
	let x = mod(u * modPow(v, 3n) * modPow(u * modPow(v, 7n), (P - 5n) / 8n));
	const vx2 = mod(v * x * x);
	if (vx2 === u) {
		// x is a root
	} else if (vx2 === mod(-u)) {
		x = mod(x * SQRT_M1);
	} else {
		return false;
	}
	if (x === 0n && sign === 1n) return false;
	return true;
}
