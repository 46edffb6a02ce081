#!/usr/bin/python3
"""Independent Standard Webhooks v1 signer, used by tests/unit/test_sign.c.

Prints N random cases, one per line, space-separated hex fields:
  secret-string-hex  id-hex  timestamp  body-hex  header-value-hex
where secret-string is "whsec_" + base64(key) (or bare base64 for every third
case), keys are 16..64 random bytes, bodies are random binary (NUL bytes
included) or empty, and the header value holds one or two "v1," signatures
(the two-key lines carry two secrets joined by a comma inside secret-string).
It uses only Python's hmac, hashlib and base64, never hookq's code.
"""
import base64
import hashlib
import hmac
import random
import sys


def sign(key, msg_id, ts, body):
    content = msg_id.encode() + b"." + str(ts).encode() + b"." + body
    mac = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def secret_str(key, i):
    b = base64.b64encode(key).decode()
    return b if i % 3 == 2 else "whsec_" + b


def main():
    n = int(sys.argv[1])
    rnd = random.Random(int(sys.argv[2]))
    for i in range(n):
        nkeys = 2 if i % 4 == 3 else 1
        keys = [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(16, 64)))
                for _ in range(nkeys)]
        msg_id = "msg_" + "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                                  for _ in range(rnd.randint(1, 40)))
        ts = rnd.randint(0, 4102444800)
        blen = 0 if i % 7 == 0 else rnd.randint(1, 3000)
        body = bytes(rnd.getrandbits(8) for _ in range(blen))
        header = " ".join(sign(k, msg_id, ts, body) for k in keys)
        secrets = ",".join(secret_str(k, i) for k in keys)
        print(secrets.encode().hex(), msg_id.encode().hex(), ts, body.hex() or "-",
              header.encode().hex())


if __name__ == "__main__":
    main()
