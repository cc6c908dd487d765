#!/usr/bin/env python3
"""Regenerates planted.jsonl: python3 testdata/gen_planted.py > testdata/planted.jsonl

Each line is one captured call in a compact form (the test turns it into a
store.Record with real OpenAI request/response bodies and inserts it through
sqlite). `plant` says which stage must remove the row and why; rows without
it must survive. The answers are JSON {"category", "answer"} so the fixture
spec can require JSON and a schema.
"""
import json, random

rng = random.Random(7)
WORDS = ("account invoice refund shipping delivery password login order package warehouse courier "
         "subscription renewal discount coupon voucher receipt payment transfer balance statement "
         "address customer ticket priority escalation manager schedule appointment calendar meeting "
         "printer scanner laptop monitor keyboard battery charger cable adapter firmware update "
         "install configure network router modem signal bandwidth latency server backup restore "
         "archive folder document spreadsheet chart report summary budget forecast quarter revenue "
         "margin expense travel hotel flight luggage passport visa insurance claim policy premium "
         "deductible coverage doctor clinic prescription pharmacy allergy symptom recipe kitchen oven "
         "garden flower tomato harvest season weather storm river mountain bicycle helmet trail").split()

def sentence(n):
    return " ".join(rng.choice(WORDS) for _ in range(n))

rows = []
t0 = 1767225600  # 2026-01-01T00:00:00Z
seq = 0
def add(**kw):
    global seq
    seq += 1
    r = {"id": "req_%03d" % seq, "created": t0 + seq * 60, "route": "support-bot", "model": "gpt-4o-mini",
         "tags": ["prod"], "meta": {"team": rng.choice(["billing", "tech"])}}
    r.update(kw)
    rows.append(r)
    return r

def answer(cat, text):
    return json.dumps({"category": cat, "answer": text})

good = []
for i in range(24):
    q = "question %d: %s?" % (i, sentence(60))
    good.append(add(user=q, answer=answer(rng.choice(["billing", "tech", "account"]), sentence(30)),
                    score=round(rng.uniform(0.5, 1.0), 2) if i % 2 == 0 else None))

# select: not a chat completion, and an unreadable request.
add(endpoint="embeddings", user="embed me", answer="", plant="select:not a chat completion")
add(user="", answer=answer("tech", "fine"), raw_request="{not json", plant="select:unreadable record")
# select: a failed call (status 500) is dropped: status ok only.
add(user="this call failed upstream", answer="", status=500, error="upstream 500", plant="select:not selected: status not ok")
# select: another route is not selected.
add(user="other route " + sentence(20), answer=answer("tech", "ok"), route="sales-bot", plant="none:route")

# validate
for _ in range(3):
    add(user="broken json " + sentence(40), answer='{"category": "billing", "answer": "' + sentence(10), plant="validate:answer is not valid JSON")
for _ in range(2):
    add(user="bad category " + sentence(40), answer=answer("weather", sentence(12)), plant="validate:answer does not match the schema")
add(user="refuse me " + sentence(30), answer="I'm sorry, but I can't help with that request.", plant="validate:refusal")
add(user="refuse me too " + sentence(30), answer="I’m sorry, but I cannot assist with this.", plant="validate:refusal")
add(user="refusal field " + sentence(30), answer=None, refusal="I can't help with that.", plant="validate:refusal")
add(user="stream broke " + sentence(30), answer=answer("tech", sentence(5)), error="stream broke: unexpected EOF", plant="validate:upstream error")
add(user="upstream said error " + sentence(30), answer=answer("tech", sentence(5)), error="upstream timeout after first byte", plant="validate:upstream error")
add(user="empty " + sentence(30), answer="", plant="validate:empty answer")
add(user="cut off " + sentence(30), answer=answer("tech", sentence(8)), finish="length", plant="validate:truncated (finish_reason length)")

# dedupe: exact duplicates after normalisation (case, whitespace, punctuation) of good rows.
for i, g in enumerate(good[:3]):
    u = g["user"].upper().replace(" ", "  ").replace("?", " !")
    add(user=u, answer=g["answer"].replace('"answer": "', '"answer":"'), plant="dedupe:exact duplicate")
# near duplicates: one or two words changed in a ~100-word conversation.
for i, g in enumerate(good[3:7]):
    words = g["user"].split()
    words[10] = "zebra"
    if i % 2:
        words[40] = "quokka"
    add(user=" ".join(words), answer=g["answer"], plant="dedupe:near duplicate")
# A near duplicate with a better feedback score replaces its original: still one row removed.
words = good[7]["user"].split(); words[20] = "platypus"
add(user=" ".join(words), answer=good[7]["answer"], score=2.0, plant="dedupe:near duplicate")

# scrub: PII of each kind, kept (with placeholders).
add(user="Contact me at jane.doe@example.com or jane.doe@example.com, cc ops@acme.io. " + sentence(30),
    answer=answer("account", "We will email jane.doe@example.com. " + sentence(10)), pii={"EMAIL": 4})
add(user="Call me on +44 20 7946 0958 please. " + sentence(30), answer=answer("account", "Calling (415) 555-0132 now. " + sentence(8)), pii={"PHONE": 2})
add(user="My card 4111 1111 1111 1111 was charged twice. " + sentence(30), answer=answer("billing", "Refunding the card ending 1111. " + sentence(8)), pii={"CARD": 1})
add(user="Wire it to DE89 3704 0044 0532 0130 00 today. " + sentence(30), answer=answer("billing", "Transfer queued. " + sentence(8)), pii={"IBAN": 1})
add(user="Server 203.0.113.45 and 2001:db8::8a2e:370:7334 are down. " + sentence(30), answer=answer("tech", "Pinging the hosts. " + sentence(8)), pii={"IP": 2})
add(user="My key sk-proj-4fG7hJ2kL9mN3pQ8rS1tU6vW0xY5zA leaked. " + sentence(30), answer=answer("tech", "Rotate it now. " + sentence(8)), pii={"SECRET": 1})

for r in rows:
    print(json.dumps(r, sort_keys=True))
