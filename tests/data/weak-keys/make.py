#!/usr/bin/env python3
"""Makes the deliberately weak RSA keys of tests/data/weak-keys/ (run from anywhere; it writes
beside itself). Real keys: n = p*q with d, so each signs and verifies like any RSA key; only the
choice of p and q is bad.

- small-factor.jwk.json: p = 751, the largest prime goodkey trial-divides by (below 752), and
  q a 2037-bit prime: n has 2048 bits and a factor any trial division finds.
- small-factor-7919.jwk.json: p = 7919 (the 1000th prime), beyond goodkey's bound and within
  resigner's (primes below 10000).
- close-primes.jwk.json / close-primes.pkcs8.pem: p a random 1024-bit prime and q the next
  prime after p + 2^500: Fermat's method from ceil(sqrt(n)) factors n in its first round.
  The PEM (PKCS#8, private: it exists to be refused as a signing key) is the same key.
- roca-constructed.jwk.json: both primes of the ROCA form p = k*M + (65537^a mod M), M the
  primorial of the first 126 primes (as for 2048-bit keys): what Infineon's RSALib made.

Random numbers come from `secrets`; the primality test is Miller-Rabin with 40 random bases.
Needs python3 and `cryptography` (only to write the PKCS#8 PEM).
"""

import base64
import json
import os
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = os.path.dirname(os.path.abspath(__file__))
E = 65537


def is_probable_prime(n, rounds=40):
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        a = secrets.randbelow(n - 3) + 2
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def next_prime(n):
    n |= 1
    while not (is_probable_prime(n) and (n - 1) % E != 0):
        n += 2
    return n


def random_prime(bits):
    return next_prime(secrets.randbits(bits) | (3 << (bits - 2)))


def b64(n):
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def write_jwk(name, kid, p, q):
    n = p * q
    assert n.bit_length() == 2048, (name, n.bit_length())
    jwk = {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64(n), "e": b64(E)}
    with open(os.path.join(HERE, name), "w") as out:
        json.dump(jwk, out, indent=2)
        out.write("\n")
    return n


def private_key(p, q):
    n = p * q
    d = pow(E, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p, q=q, d=d, dmp1=d % (p - 1), dmq1=d % (q - 1), iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(E, n),
    )
    return numbers.private_key()


def with_bits(small, bits=2048):
    """A prime q such that small * q has exactly `bits` bits."""
    while True:
        low = (1 << (bits - 1)) // small + 1
        q = next_prime(low + secrets.randbelow(low // 2))
        if (small * q).bit_length() == bits:
            return q


def first_primes(count):
    out, n = [], 2
    while len(out) < count:
        if all(n % p for p in out):
            out.append(n)
        n += 1
    return out


def roca_prime(m, bits):
    order_bound = 1 << 64
    while True:
        k = secrets.randbits(bits - m.bit_length())
        a = secrets.randbelow(order_bound)
        p = k * m + pow(E, a, m)
        if p.bit_length() == bits and is_probable_prime(p) and (p - 1) % E:
            return p


def main():
    write_jwk("small-factor.jwk.json", "weak-small-factor", 751, with_bits(751))
    write_jwk("small-factor-7919.jwk.json", "weak-small-factor-7919", 7919, with_bits(7919))

    while True:
        p = random_prime(1024)
        q = next_prime(p + (1 << 500))
        if (p * q).bit_length() == 2048:
            break
    write_jwk("close-primes.jwk.json", "weak-close-primes", p, q)
    pem = private_key(p, q).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with open(os.path.join(HERE, "close-primes.pkcs8.pem"), "wb") as out:
        out.write(pem)

    m = 1
    for prime in first_primes(126):
        m *= prime
    while True:
        p, q = roca_prime(m, 1024), roca_prime(m, 1024)
        if (p * q).bit_length() == 2048:
            break
    write_jwk("roca-constructed.jwk.json", "weak-roca-constructed", p, q)


if __name__ == "__main__":
    main()
