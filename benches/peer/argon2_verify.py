"""H for the peer's implementation: argon2-cffi (libargon2) verify at our parameters.

Prints one line: `argon2-cffi verify ms: <mean of N>`; the side-by-side script runs it
interleaved with our builds' own measurement.
"""
import sys
import time

from argon2 import PasswordHasher, Type

hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID)
stored = hasher.hash("correct horse battery staple")
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
hasher.verify(stored, "correct horse battery staple")
started = time.perf_counter()
for _ in range(rounds):
    hasher.verify(stored, "correct horse battery staple")
print(f"argon2-cffi verify ms: {(time.perf_counter() - started) * 1000 / rounds:.3f}")
