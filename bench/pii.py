"""PII detection benchmark: app/guardrails/pii.py beside a naive regex set (no checksums, no context) in the same run.

Two data sets:
- EN: Presidio research's synthetic sentences (`synth_dataset_v2.json`: `full_text`, `spans` with `entity_type`,
  `start_position`, `end_position`). Its types map to ours: CREDIT_CARD -> bank_card, PHONE_NUMBER -> phone
  (our mobile or phone), EMAIL_ADDRESS -> email, IP_ADDRESS -> ip. Its other types (names, addresses, US SSN,
  IBAN, ...) are reported as not handled: not counted for recall, and a prediction overlapping one is not
  counted against precision (it is listed apart).
- ZH: customer-service sentences generated here from templates with Faker("zh_CN") values (seeded; not stored):
  resident ID numbers (`fake.ssn()`, check character included), Luhn-valid cards, mobiles in several spellings,
  landlines, emails, IPs, passports, and negatives that must stay readable: order numbers, tracking numbers,
  dates, amounts, times.

A gold span counts as found when a prediction of its type overlaps it; a prediction is correct when it overlaps
a gold span of its type. Speed: microseconds per sentence for each detector.

    python bench/pii.py                                   # ../shared/datasets/pii-presidio, 1,000 ZH sentences
    python bench/pii.py --presidio PATH --zh 2000 --seed 7
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import time
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.guardrails.pii import find_pii, id_check_char, luhn_valid, valid_id_number  # noqa: E402

DEFAULT_PRESIDIO = ROOT.parent / "shared" / "datasets" / "pii-presidio" / "synth_dataset_v2.json"
PRESIDIO_TYPES = {"CREDIT_CARD": "bank_card", "PHONE_NUMBER": "phone", "EMAIL_ADDRESS": "email", "IP_ADDRESS": "ip"}
MERGE_FOR_EN = {"mobile": "phone"}  # Presidio has one phone type

# The baseline: one plain regex per type, the more specific first, first match wins an overlap; digit boundaries (so "手机13800138000" is
# read; a \b in Unicode mode would not see it), no checksum, no date check, no context.
BASELINE = [
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.ASCII)),
    ("ip", re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")),
    ("id_number", re.compile(r"(?<!\d)\d{17}[\dXx](?![\dA-Za-z])")),
    ("bank_card", re.compile(r"(?<!\d)(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,4})?)(?!\d)")),
    ("mobile", re.compile(r"(?<!\d)(?:\+?86[ -]?)?1\d{2}[ -]?\d{4}[ -]?\d{4}(?!\d)")),
    ("passport", re.compile(r"(?<![A-Za-z0-9])[A-Z]\d{8}(?!\d)")),
    ("phone", re.compile(r"(?<![\d+])\+?\(?\d[\d ().-]{5,}\d(?!\d)")),
]


def baseline_pii(text: str) -> list[tuple[str, int, int]]:
    taken: list[tuple[str, int, int]] = []
    for kind, pattern in BASELINE:
        for m in pattern.finditer(text):
            if kind == "phone" and sum(c.isdigit() for c in m.group()) < 7:
                continue
            if all(m.end() <= s or m.start() >= e for _, s, e in taken):
                taken.append((kind, m.start(), m.end()))
    return sorted(taken, key=lambda t: t[1])


def kefu_pii(text: str) -> list[tuple[str, int, int]]:
    return [(s.type, s.start, s.end) for s in find_pii(text)]


# --- the Chinese set ---------------------------------------------------------------------------------------------

TEMPLATES = [
    "您好，我的身份证号是{id}，手机{mobile}，麻烦帮我查一下。",
    "我叫{name}，身份证{id}，想修改绑定的手机号{mobile}。",
    "卡号{card}被冻结了，怎么解冻？",
    "我的银行卡 {card} 扣款失败，订单号 {order}。",
    "请把发票发到我的邮箱{email}，谢谢。",
    "邮箱是 {email}，电话 {phone}，有事联系我。",
    "为什么登录时提示 IP {ip} 被封禁？",
    "我在公司网络 {ip} 下打不开你们的网站。",
    "护照号码{passport}，用来办理退税可以吗？",
    "出境游需要登记护照：{passport}，姓名{name}。",
    "手机号{mobile}收不到验证码，订单{order}一直没发货。",
    "订单号{order}，运单号{tracking}，{date}下的单到现在还没到。",
    "我{date}付了{amount}，订单号是{order}，还没退款。",
    "快递单号{tracking}显示已签收，但我没收到。",
    "请联系我的座机{phone}或者手机{mobile}。",
    "收货人{name}，电话{mobile}，地址{address}。",
    "我的信用卡{card}在{date}被盗刷了{amount}，请帮我冻结。",
    "证件号{id}，需要实名认证。",
    "{time}的时候我打过{phone}，没人接。",
    "订单 {order} 的金额是{amount}，能开发票吗？",
    "退款{amount}什么时候到账？订单编号{order}。",
    "这是我的新号码 {mobile}，旧的 {mobile} 不用了。",
    "持卡人{name}，卡号 {card}，有效期到{date}。",
    "第{qty}次联系你们了，订单{order}还是没有处理！",
    "我的账号绑定的邮箱 {email} 和手机 {mobile} 都要改。",
    "服务器 {ip} 访问你们的 API 超时。",
    "我的护照 {passport} 过期了，会员实名信息要更新吗？",
    "{date} {time} 收到一条短信让我转账{amount}，是你们发的吗？",
    "工单号{order}，麻烦尽快处理。",
    "商品型号 G{qty}00，数量{qty}件，共{amount}。",
    # Numbers a customer pastes without saying what they are: order and tracking numbers must stay readable.
    "{order} 这个单什么时候发货？",
    "我买的东西（{order}）到现在还没到。",
    "{tracking} 到哪了？",
    "查一下 {tracking}，{date}就发出了。",
]
NEGATIVE_SLOTS = ("order", "tracking", "date", "amount", "time", "qty")
AREA_CODES = ["010", "021", "020", "022", "023", "024", "025", "027", "028", "029", "0755", "0571", "0512", "0731", "0591"]


def zh_values(fake, rng: random.Random) -> dict:
    def mobile() -> str:
        number = fake.phone_number()
        style = rng.random()
        if style < 0.5:
            return number
        if style < 0.65:
            return f"{number[:3]} {number[3:7]} {number[7:]}"
        if style < 0.8:
            return f"{number[:3]}-{number[3:7]}-{number[7:]}"
        if style < 0.9:
            return f"+86 {number}"
        return f"+86-{number[:3]}-{number[3:7]}-{number[7:]}"

    def phone() -> str:
        area = rng.choice(AREA_CODES)
        length = 8 if len(area) == 3 else rng.choice([7, 8])
        subscriber = str(rng.randint(2, 8)) + "".join(rng.choice("0123456789") for _ in range(length - 1))
        return rng.choice([f"{area}-{subscriber}", f"({area}){subscriber}", f"{area} {subscriber}", f"{area}{subscriber}"])

    def card() -> str:
        number = fake.credit_card_number()
        if rng.random() < 0.3 and len(number) == 16:
            sep = rng.choice([" ", "-"])
            return sep.join(number[i:i + 4] for i in range(0, 16, 4))
        return number

    def passport() -> str:
        roll = rng.random()
        digits = "".join(rng.choice("0123456789") for _ in range(8))
        if roll < 0.6:
            return "E" + digits
        if roll < 0.75:
            return "G" + digits
        if roll < 0.85:
            return "E" + rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + digits[:7]
        return rng.choice(["K", "P", "AB", "X"]) + digits[:7]  # a foreign passport, named by 护照 in its template

    def order() -> str:
        roll = rng.random()
        if roll < 0.5:
            return "".join(rng.choice("0123456789") for _ in range(rng.randint(11, 20))).lstrip("0") or "1"
        if roll < 0.7:
            return f"2025{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 10**8 - 1):08d}"
        if roll < 0.85:
            return f"KF-{rng.randint(10000, 99999)}"
        return f"#{rng.randint(100000, 999999)}"

    def tracking() -> str:
        if rng.random() < 0.5:
            return rng.choice(["SF", "YT", "JD", "ZTO"]) + "".join(rng.choice("0123456789") for _ in range(13))
        return "".join(rng.choice("0123456789") for _ in range(rng.choice([12, 13, 15])))

    def when() -> str:
        d = fake.date_between(start_date="-2y", end_date="today")
        return rng.choice([d.isoformat(), f"{d.year}年{d.month}月{d.day}日", d.strftime("%Y%m%d"), d.strftime("%Y.%m.%d")])

    def amount() -> str:
        value = rng.randint(1, 99999) + rng.choice([0, 0.5, 0.99])
        return rng.choice([f"¥{value:,.2f}", f"{value:.2f}元", f"{int(value)}元", f"{value:.2f}"])

    return {
        "id": fake.ssn, "mobile": mobile, "phone": phone, "card": card, "email": lambda: rng.choice([fake.email, fake.free_email])(),
        "ip": lambda: fake.ipv6() if rng.random() < 0.15 else fake.ipv4(), "passport": passport, "name": fake.name,
        "address": fake.address, "order": order, "tracking": tracking, "date": when, "amount": amount,
        "time": lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}", "qty": lambda: str(rng.randint(2, 20)),
    }  # fmt: skip


GOLD_TYPE = {"id": "id_number", "mobile": "mobile", "phone": "phone", "card": "bank_card", "email": "email",
             "ip": "ip", "passport": "passport", "address": "address", "name": "name"}  # fmt: skip
HANDLED = ("id_number", "bank_card", "mobile", "phone", "email", "ip", "passport")


def zh_dataset(n: int, seed: int) -> list[dict]:
    from faker import Faker

    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    makers = zh_values(fake, rng)
    records = []
    for i in range(n):
        template = TEMPLATES[i % len(TEMPLATES)] if i < len(TEMPLATES) else rng.choice(TEMPLATES)
        text, spans, negatives = "", [], []
        for piece in re.split(r"(\{\w+\})", template):
            if piece.startswith("{"):
                slot = piece[1:-1]
                value = makers[slot]()
                if slot in GOLD_TYPE:
                    spans.append({"type": GOLD_TYPE[slot], "start": len(text), "end": len(text) + len(value), "value": value})
                elif slot in NEGATIVE_SLOTS:
                    negatives.append({"type": slot, "start": len(text), "end": len(text) + len(value), "value": value})
                text += value
            else:
                text += piece
        records.append({"text": text, "spans": spans, "negatives": negatives})
    return records


def presidio_dataset(path: Path) -> list[dict]:
    records = []
    for row in json.loads(path.read_text(encoding="utf-8")):
        spans = [{"type": PRESIDIO_TYPES.get(s["entity_type"], s["entity_type"]), "start": s["start_position"],
                  "end": s["end_position"], "value": s["entity_value"]} for s in row["spans"]]  # fmt: skip
        records.append({"text": row["full_text"], "spans": spans, "negatives": []})
    return records


def overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    return a_start < b_end and b_start < a_end


def score(records: list[dict], detect, handled: tuple[str, ...], merge: dict[str, str]) -> dict:
    """Per type: gold, found, predicted, correct; predictions on unhandled gold types and on negatives apart."""
    stats: dict[str, Counter] = defaultdict(Counter)
    negatives_hit: Counter = Counter()
    negatives_all: Counter = Counter()
    started = time.perf_counter()
    predictions = [detect(r["text"]) for r in records]
    seconds = time.perf_counter() - started
    for record, predicted in zip(records, predictions):
        predicted = [(merge.get(k, k), s, e) for k, s, e in predicted]
        for gold in record["spans"]:
            if gold["type"] in handled:
                stats[gold["type"]]["gold"] += 1
                if any(k == gold["type"] and overlaps(s, e, gold["start"], gold["end"]) for k, s, e in predicted):
                    stats[gold["type"]]["found"] += 1
        for neg in record["negatives"]:
            negatives_all[neg["type"]] += 1
            if any(overlaps(s, e, neg["start"], neg["end"]) for _, s, e in predicted):
                negatives_hit[neg["type"]] += 1
        for kind, s, e in predicted:
            stats[kind]["predicted"] += 1
            golds = [g for g in record["spans"] if overlaps(s, e, g["start"], g["end"])]
            if any(g["type"] == kind for g in golds):
                stats[kind]["correct"] += 1
            elif any(g["type"] not in handled for g in golds):
                stats[kind]["on_unhandled"] += 1
    return {"types": stats, "negatives_hit": negatives_hit, "negatives_all": negatives_all,
            "us_per_text": 1e6 * seconds / max(1, len(records))}  # fmt: skip


def prf(c: Counter) -> tuple[float, float, float]:
    recall = c["found"] / c["gold"] if c["gold"] else float("nan")
    judged = c["predicted"] - c["on_unhandled"]
    precision = c["correct"] / judged if judged else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return recall, precision, f1


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b and b == b and a == a else "n/a"


def table(name: str, ours: dict, base: dict, handled: tuple[str, ...]) -> None:
    print(f"\n### {name}\n")
    print("| type | gold | Kefu recall | Kefu precision | Kefu F1 | baseline recall | baseline precision | baseline F1 | F1 ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    total_ours, total_base = Counter(), Counter()
    for kind in handled:
        o, b = ours["types"][kind], base["types"][kind]
        if not o["gold"] and not o["predicted"] and not b["predicted"]:
            continue
        total_ours.update(o)
        total_base.update(b)
        ro, po, fo = prf(o)
        rb, pb, fb = prf(b)
        print(f"| {kind} | {o['gold']} | {ro:.3f} | {po:.3f} | {fo:.3f} | {rb:.3f} | {pb:.3f} | {fb:.3f} | {ratio(fo, fb)} |")
    ro, po, fo = prf(total_ours)
    rb, pb, fb = prf(total_base)
    print(f"| **all handled** | {total_ours['gold']} | **{ro:.3f}** | **{po:.3f}** | **{fo:.3f}** | {rb:.3f} | {pb:.3f} | {fb:.3f} | **{ratio(fo, fb)}** |")
    unhandled = sum(ours["types"][k]["on_unhandled"] for k in ours["types"])
    unhandled_b = sum(base["types"][k]["on_unhandled"] for k in base["types"])
    print(f"\npredictions on gold spans of types not handled (not counted against precision): Kefu {unhandled}, baseline {unhandled_b}")
    if ours["negatives_all"]:
        print("\n| negative (must stay readable) | count | Kefu flagged | baseline flagged |")
        print("|---|---|---|---|")
        for kind, count in sorted(ours["negatives_all"].items()):
            print(f"| {kind} | {count} | {ours['negatives_hit'][kind]} | {base['negatives_hit'][kind]} |")
    print(f"\nspeed: Kefu {ours['us_per_text']:.0f} µs per sentence, baseline {base['us_per_text']:.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presidio", type=Path, default=DEFAULT_PRESIDIO, help=f"synth_dataset_v2.json (default: {DEFAULT_PRESIDIO})")
    parser.add_argument("--zh", type=int, default=1000, help="Chinese sentences to generate (default 1000)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(f"# Kefu PII benchmark, {date.today()}, {platform.node()} ({os.cpu_count()} CPUs), Python {platform.python_version()}")
    zh = zh_dataset(args.zh, args.seed)
    bad_ids = sum(1 for r in zh for s in r["spans"] if s["type"] == "id_number" and not valid_id_number(s["value"]))
    bad_cards = sum(1 for r in zh for s in r["spans"] if s["type"] == "bank_card" and not luhn_valid(re.sub(r"\D", "", s["value"])))
    assert id_check_char("11010519491231002") == "X"
    print(f"ZH: {len(zh)} generated sentences (seed {args.seed}), {sum(len(r['spans']) for r in zh)} PII spans, "
          f"{sum(len(r['negatives']) for r in zh)} negatives; generated ID numbers failing their check: {bad_ids}, "
          f"cards failing Luhn: {bad_cards}")  # fmt: skip

    if args.presidio.exists():
        en = presidio_dataset(args.presidio)
        gold_types = Counter(s["type"] for r in en for s in r["spans"])
        en_handled = ("bank_card", "phone", "email", "ip")
        print(f"EN: {args.presidio} ({len(en)} sentences); types not handled: "
              + ", ".join(f"{k} {v}" for k, v in gold_types.most_common() if k not in en_handled))  # fmt: skip
        table("EN: Presidio synth_dataset_v2 (mobile and phone both count as PHONE_NUMBER)",
              score(en, kefu_pii, en_handled, MERGE_FOR_EN), score(en, baseline_pii, en_handled, MERGE_FOR_EN), en_handled)  # fmt: skip
    else:
        print(f"EN: {args.presidio} not found; skipped")
    table("ZH: generated customer-service sentences", score(zh, kefu_pii, HANDLED, {}), score(zh, baseline_pii, HANDLED, {}), HANDLED)


if __name__ == "__main__":
    main()
