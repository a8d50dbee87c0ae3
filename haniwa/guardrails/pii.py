"""The sensitive-information policy: PII types and custom regexes, all exact and offline.

Which detector is what (each runs on normalised text, so full-width digits and letters count):

- ``EMAIL``: a regular expression for addr-spec-like addresses (local@domain.tld).
- ``PHONE``: the ``phonenumbers`` library's matcher with regions JP, US and GB (not GB in Japanese
  text) at leniency VALID, so only numbers a real numbering plan allows (090-1234-5678, 03-1234-5678,
  +81 90 …, (415) 555-2671, 020 7946 0958); after a phone word (phone, mobile, call, 電話, 携帯,
  連絡 …) any number of a possible length for those regions. A number labelled right before it as
  another kind (注文番号, part number, order no.) or joined by a hyphen to a longer code
  (205-481-7730-B) is not one.
- ``CREDIT_DEBIT_CARD_NUMBER``: 13–19 digits (spaces or hyphens between groups) passing Luhn
  (``stdnum.luhn``).
- ``IP_ADDRESS``: IPv4/IPv6 candidates checked by the standard library's ``ipaddress``.
- ``URL``: http(s)/ftp URLs and ``www.`` hosts, trailing punctuation left out.
- ``ADDRESS``: Japanese addresses: a prefecture (都道府県), one or more municipalities (市区町村郡)
  and a block number (番地: 1-2-3, 1丁目2番3号, …); English street addresses: a house number, one to
  three words or ordinals and a street suffix (221B Baker Street, 301 West 57th Street) — regular
  expressions, exact but not exhaustive.
- ``NAME``: ``names.py`` (MeCab proper-noun tags for Japanese full names or surname + honorific; a
  title or "my name is" before capitalised words in English).
- haniwa's ``JP_MY_NUMBER`` (a regex entry whose pattern is ``MY_NUMBER_PATTERN``): 12 digits (optionally
  4-4-4) whose check digit is valid (``stdnum.jp.in_``). Bedrock has no such PII type.

Other Bedrock PII types are accepted in a configuration and not detected yet."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator

import phonenumbers
from stdnum import luhn
from stdnum.jp import in_ as my_number

from haniwa.errors import ValidationError
from haniwa.guardrails.base import (
    MY_NUMBER_PATTERN,
    Action,
    Finding,
    Kind,
    PiiRule,
    RegexRule,
    Source,
)
from haniwa.guardrails.names import names
from haniwa.guardrails.normalize import Normalized
from haniwa.guardrails.semantic import language

__all__ = ["PiiDetector", "RegexDetector", "SUPPORTED_TYPES", "compile_regex"]

Span = tuple[int, int]

# ASCII boundaries: Japanese text runs straight on into an address (taro@example.jpです)
_EMAIL = re.compile(r"(?<![a-z0-9._%+-])[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?![a-z0-9_-])")
_CARD = re.compile(r"(?<![\d-])(?<!\d )\d(?:[ -]?\d){12,18}(?![ -]?\d)")
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9a-f:])[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?![0-9a-f:])")
_URL = re.compile(r"(?:(?:https?|ftp)://|www\.)[^\s<>\"'「」（）()、。]+")
# not part of a longer digit run (a card number written 4-4-4-4)
_MY_NUMBER = re.compile(r"(?<![\d-])(?<!\d )\d{4}([ -]?)\d{4}\1\d{4}(?![ -]?\d)")
_PREFECTURES = (
    "北海道|東京都|京都府|大阪府|青森県|岩手県|宮城県|秋田県|山形県|福島県|茨城県|栃木県|群馬県|埼玉県|"
    "千葉県|神奈川県|新潟県|富山県|石川県|福井県|山梨県|長野県|岐阜県|静岡県|愛知県|三重県|滋賀県|兵庫県|"
    "奈良県|和歌山県|鳥取県|島根県|岡山県|広島県|山口県|徳島県|香川県|愛媛県|高知県|福岡県|佐賀県|長崎県|"
    "熊本県|大分県|宮崎県|鹿児島県|沖縄県"
)
# Bounded and without nested repeats (a nested "(…[市区町村])+" backtracked exponentially on 市市市…):
# after the prefecture, up to 24 non-digit characters that include a municipality suffix, then the
# block number.
_ADDRESS = re.compile(
    rf"(?:{_PREFECTURES})"
    r"(?=[^\s\d、。,，.]{0,23}[市区町村郡])"  # a municipality: 千代田区, 横浜市中区, 〇〇郡〇〇町
    r"[^\s\d、。,，.]{1,24}?"  # municipalities and town name: 横浜市中区本町, 千代田区丸の内
    r"\d{1,5}(?:丁目|番地|番|号|-|の)?(?:\d{1,5}(?:番地|番|号|-|の)?){0,3}"
)
# without the prefecture: a city, ward or district (札幌市, 港北区) and a block number that only
# addresses have (3丁目, 南3条西7丁目, 5番地, 32-4)
_ADDRESS_LOCAL = re.compile(
    r"[一-龥ァ-ヶ]{1,5}(?<![学地])[市区郡]"  # not 学区 / 地区 (school and census districts)
    r"[一-龥ァ-ヶの]{0,12}?"  # wards and town names, no particle but の (丸の内): not 品川区の人口は1-2割
    r"(?:\d{1,4}(?:丁目|条|番地)(?:[^\s\d、。,，.]{0,3}\d{1,4}(?:丁目|番地|番|号|-)?){0,3}|\d{1,4}-\d{1,4}(?:-\d{1,4})?)"
)
# romanised: 3-12-5 Nakameguro, Meguro-ku / Osaka-shi, Kita-ku, Umeda 1-8-17
_ROMAJI = r"[a-z]+-(?:ku|shi|cho|machi|gun|mura)\b"
_ADDRESS_ROMAJI = re.compile(
    rf"(?<![\w-])\d{{1,4}}-\d{{1,4}}-\d{{1,4}}\b[^.\n]{{0,40}}?{_ROMAJI}"
    rf"|{_ROMAJI}[^.\n]{{0,40}}?(?<![\w-])\d{{1,4}}-\d{{1,4}}-\d{{1,4}}(?![\w-])"
)


def _email(text: str) -> Iterator[Span]:
    for m in _EMAIL.finditer(text):
        yield m.span()


# a number labelled as another kind right before it (ご注文番号 2026-1104-5583, "tracking no. …"): one
# in eleven 12-digit ids has a valid check digit by chance, so a label that names the number settles it
_OTHER_NUMBER = re.compile(
    r"(?:注文|伝票|追跡|問い?合わせ|お問合せ|予約|会員|口座|受付|管理|製造|シリアル|型|品|商品|請求|領収|"
    r"チケット|ポイント|カード)(?:番号|no\.?|id|コード)|"
    r"\b(?:order|tracking|invoice|booking|reservation|reference|ref|serial|ticket|account|member(?:ship)?|"
    r"customer|policy|case|part|model|confirmation|transaction)\s*(?:number|no\.?|#|id|code)?\s*[:：#]?\s*$",
    re.IGNORECASE,
)
_LABEL = 16


def _other_number(text: str, start: int) -> bool:
    """Whether the number at ``start`` is labelled right before it as another kind of number."""
    return _OTHER_NUMBER.search(text[max(0, start - _LABEL) : start].rstrip(" :：は#")) is not None


def _glued(text: str, start: int, end: int) -> bool:
    """Whether the digits at ``start:end`` are one part of a longer code joined by a hyphen or slash
    (205-481-7730-B, AB-03-1234-5678): a part or model number, not a phone number."""
    after = text[end : end + 2]
    before = text[max(0, start - 2) : start]
    return (len(after) == 2 and after[0] in "-/" and after[1].isascii() and after[1].isalnum()) or (
        len(before) == 2 and before[1] in "-/" and before[0].isascii() and before[0].isalnum()
    )


# words that say a number is a phone number (normalised, lower-cased text), within _NEAR characters
# before it: with one, a number of a plausible length counts even outside the allocated ranges
# (UK fiction numbers 07700 900xxx, a new JP mobile range), as Presidio's context words do
_PHONE_WORDS = re.compile(
    r"phone|mobile|cell|contact|\bcall|\btext\b|\breach\b|\btel\b|\bfax\b|whatsapp|\bsms\b|"
    r"電話|携帯|連絡|ファックス|ファクス"
)
_NEAR = 40
_REGIONS = ("JP", "US", "GB")


def _phone(text: str) -> Iterator[Span]:
    found: set[Span] = set()
    worded = _PHONE_WORDS.search(text) is not None
    # Japanese text writes a foreign number with its country code: read as a UK number, 012-3456-7890
    # (a part number) would be a valid one
    regions = _REGIONS[:2] if language(text) == "ja" else _REGIONS
    for region in regions:
        for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            # a UK number is written with its trunk 0 or +44: "4471-2290-8813" is an order number
            if region != "GB" or m.raw_string.lstrip("(").startswith(("0", "+")):
                found.add((m.start, m.end))
        if worded:
            for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE):
                if _PHONE_WORDS.search(text, max(0, m.start - _NEAR), m.start):
                    found.add((m.start, m.end))
    yield from sorted(span for span in found if not _other_number(text, span[0]) and not _glued(text, *span))


def _card(text: str) -> Iterator[Span]:
    for m in _CARD.finditer(text):
        if luhn.is_valid(re.sub(r"[ -]", "", m.group())):
            yield m.span()


def _ip(text: str) -> Iterator[Span]:
    for pattern in (_IPV4, _IPV6):
        for m in pattern.finditer(text):
            try:
                ipaddress.ip_address(m.group())
            except ValueError:
                continue
            yield m.span()


def _url(text: str) -> Iterator[Span]:
    for m in _URL.finditer(text):
        end = m.end()
        while end > m.start() and text[end - 1] in ".,;:!?":
            end -= 1
        yield m.start(), end


# a house number (221b), one to three words or ordinals (west 57th), and a street suffix
_STREET = re.compile(
    r"(?<![\w-])\d{1,5}[a-z]?\s+(?:(?:[a-z][a-z'.-]*|\d{1,3}(?:st|nd|rd|th))\s+){1,3}"
    r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|terrace|way|court|ct|place|pl|parkway|"
    r"crossing|circle|cir|crescent|plaza|pike)\b\.?"
)
# a US street line of any suffix, known by its tail: a unit, then "City, ST 80202" (41 Beacon Knoll,
# Suite 900, Denver, CO 80202)
_US_STATES = (
    "al|ak|az|ar|ca|co|ct|de|dc|fl|ga|hi|id|il|in|ia|ks|ky|la|me|md|ma|mi|mn|ms|mo|mt|ne|nv|nh|nj|nm|ny|nc|nd|"
    "oh|ok|or|pa|ri|sc|sd|tn|tx|ut|vt|va|wa|wv|wi|wy"
)
_US_LINE = re.compile(
    r"(?<![\w-])\d{1,5}[a-z]?\s+(?:[a-z][a-z'.-]*\s+){1,3}?[a-z][a-z'.-]*,?\s+"
    r"(?:suite|ste\.?|apt\.?|apartment|unit|#)\s*\w+(?=,?\s+[a-z]+(?:\s+[a-z]+){0,2},\s+(?:"
    + _US_STATES
    + r")\s+\d{5}\b)"
)


_ADDRESS_PATTERNS = (_ADDRESS, _ADDRESS_LOCAL, _ADDRESS_ROMAJI, _STREET, _US_LINE)


def _address(text: str) -> Iterator[Span]:
    found = sorted(
        (m.span() for p in _ADDRESS_PATTERNS for m in p.finditer(text)),
        key=lambda span: (span[0], -span[1]),
    )
    end = -1
    for start, stop in found:  # the longest of overlapping matches (東京都千代田区… over 京都千代田区…)
        if start >= end:
            end = stop
            yield start, stop


# a number given as one (マイナンバーは…, "my individual number is …") is one even with a typo in it
_MY_NUMBER_WORDS = re.compile(r"マイナンバー|個人番号|my\s?number|individual\s+number")


def my_numbers(text: str) -> Iterator[Span]:
    """12-digit Individual Numbers with a valid check digit, or any 12 digits after "マイナンバー",
    "個人番号" or "my number" (within ``_NEAR`` characters); a number labelled right before it as another
    kind of number (an order, a tracking or an account number) is not one."""
    for m in _MY_NUMBER.finditer(text):
        named = _MY_NUMBER_WORDS.search(text, max(0, m.start() - _NEAR), m.start()) is not None
        if named or (my_number.is_valid(m.group()) and not _other_number(text, m.start())):
            yield m.span()


SUPPORTED_TYPES: dict[str, Callable[[str], Iterator[Span]]] = {
    "EMAIL": _email,
    "PHONE": _phone,
    "CREDIT_DEBIT_CARD_NUMBER": _card,
    "IP_ADDRESS": _ip,
    "URL": _url,
    "ADDRESS": _address,
}


def compile_regex(rule: RegexRule) -> Callable[[str], Iterator[Span]]:
    """A custom regex's finder, or the My Number detector. Custom regexes match the normalised text
    (NFKC, ASCII lower-cased): write ``[a-z]``, not ``[A-Z]``, and ``\\d`` for full-width digits too."""
    if rule.pattern == MY_NUMBER_PATTERN:
        return my_numbers
    try:
        pattern = re.compile(rule.pattern)
    except re.error as exc:
        raise ValidationError(f"regex {rule.name!r} does not compile: {exc}") from exc

    def finder(text: str) -> Iterator[Span]:
        for m in pattern.finditer(text):
            if m.end() > m.start():
                yield m.span()

    return finder


def _findings(
    text: Normalized, kind: Kind, label: str, spans: Iterator[Span], action: Action
) -> list[Finding]:
    out = []
    for s, e in spans:
        start, end = text.span(s, e)
        out.append(Finding(kind, label, text.original[start:end], start, end, action))
    return out


class PiiDetector:
    """The configured PII types (unsupported ones find nothing)."""

    def __init__(self, rules: tuple[PiiRule, ...]) -> None:
        self.rules = rules

    def find(self, text: Normalized, source: Source) -> list[Finding]:
        out: list[Finding] = []
        for rule in self.rules:
            action = rule.action_for(source)
            if action is not None and rule.type == "NAME":
                # capitals matter for English names: matched on the original text
                for s, e in names(text.original):
                    out.append(Finding("pii", "NAME", text.original[s:e], s, e, action))
                continue
            finder = SUPPORTED_TYPES.get(rule.type)
            if action is not None and finder is not None:
                out += _findings(text, "pii", rule.type, finder(text.text), action)
        return out


class RegexDetector:
    """The configured custom regexes, compiled once."""

    def __init__(self, rules: tuple[RegexRule, ...]) -> None:
        self.rules = rules
        self._finders = [compile_regex(r) for r in rules]

    def find(self, text: Normalized, source: Source) -> list[Finding]:
        out: list[Finding] = []
        for rule, finder in zip(self.rules, self._finders, strict=True):
            action = rule.action_for(source)
            if action is not None:
                out += _findings(text, "regex", rule.name, finder(text.text), action)
        return out
