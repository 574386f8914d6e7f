"""The workspace symbol index: tag queries in nine languages, and an index that follows edits."""

from __future__ import annotations

import shutil
import threading

import pytest

from analysis.context.builder import ContextBuilder
from analysis.documents.document import Document
from analysis.documents.store import path_to_uri
from analysis.index.definitions import MAX_SIGNATURE_BYTES, extract_symbols
from analysis.index.workspace_index import SymbolIndex
from analysis.settings import ContextSettings
from tests.analysis.context.context_cases import FIXTURES, load, place

# Every definition of every fixture file, in source order: (kind, container.name).
EXPECTED = {
    "c/src/main.c": [("function", "sum_all"), ("function", "main")],
    "c/src/ringbuf.c": [("function", "ringbuf_init"), ("function", "ringbuf_push"),
                        ("function", "ringbuf_pop")],
    "c/src/ringbuf.h": [("constant", "RINGBUF_CAPACITY"), ("class", "ringbuf"),
                        ("function", "ringbuf_init"), ("function", "ringbuf_push"),
                        ("function", "ringbuf_pop")],
    "cpp/include/matrix.hpp": [("class", "linalg.Matrix"), ("method", "Matrix.Matrix"),
                               ("method", "Matrix.rows"), ("method", "Matrix.cols"),
                               ("method", "Matrix.at"), ("method", "Matrix.at"),
                               ("function", "linalg.transpose")],
    "cpp/src/main.cpp": [("function", "print"), ("function", "main")],
    "cpp/src/matrix.cpp": [("method", "Matrix.Matrix"), ("method", "Matrix.at"),
                           ("method", "Matrix.at"), ("function", "linalg.transpose")],
    "go/main.go": [("class", "report"), ("method", "report.add"), ("function", "main")],
    "go/stock/stock.go": [("constant", "DefaultThreshold"), ("class", "Item"),
                          ("method", "Item.Available"), ("function", "Reorder")],
    "java/src/main/java/com/acme/billing/Invoice.java": [
        ("class", "Invoice"), ("method", "Invoice.Invoice"), ("method", "Invoice.addAmount"),
        ("method", "Invoice.net"), ("method", "Invoice.total")],
    "java/src/main/java/com/acme/billing/TaxCalculator.java": [
        ("class", "TaxCalculator"), ("constant", "TaxCalculator.STANDARD_RATE"),
        ("method", "TaxCalculator.TaxCalculator"), ("method", "TaxCalculator.computeTax")],
    "javascript/src/format.js": [("constant", "DEFAULT_CURRENCY"), ("function", "formatCurrency"),
                                 ("function", "padLeft")],
    "javascript/src/invoice.js": [("constant", "COLUMN_WIDTH"), ("class", "Invoice"),
                                  ("method", "Invoice.constructor"),
                                  ("method", "Invoice.totalCents"), ("method", "Invoice.render"),
                                  ("method", "Invoice.save")],
    "python/shop/cart.py": [("class", "Line"), ("class", "Cart"), ("method", "Cart.add"),
                            ("method", "Cart.net_total"), ("method", "Cart.total"),
                            ("method", "Cart.to_json")],
    "python/shop/pricing.py": [("constant", "TAX_RATE"), ("constant", "CENT"),
                               ("function", "apply_discount"), ("function", "with_tax"),
                               ("class", "PriceList"), ("method", "PriceList.__init__"),
                               ("method", "PriceList.price_of"),
                               ("method", "PriceList.__contains__")],
    "rust/src/geometry.rs": [("constant", "UNIT"), ("class", "Shape"), ("function", "area"),
                             ("method", "Shape.scaled")],
    "rust/src/main.rs": [("class", "Inventory"), ("method", "Inventory.new"),
                         ("method", "Inventory.insert"), ("method", "Inventory.total_area"),
                         ("function", "main")],
    "tsx/src/App.tsx": [("type", "Props"), ("function", "Counter"), ("function", "App")],
    "tsx/src/Badge.tsx": [("interface", "BadgeProps"), ("function", "Badge")],
    "tsx/src/format.ts": [("function", "formatCount")],
    "typescript/src/geometry.ts": [("interface", "Point"), ("constant", "EARTH_RADIUS_KM"),
                                   ("function", "distance"), ("type", "Segment")],
    "typescript/src/route.ts": [("class", "Route"), ("method", "Route.constructor"),
                                ("method", "Route.addStop"), ("method", "Route.segments"),
                                ("method", "Route.length"), ("method", "Route.describe")],
}


@pytest.mark.parametrize("file", sorted(EXPECTED))
def test_tag_queries_find_every_definition(file):
    symbols = extract_symbols(load(file))
    got = [(s.kind, f"{s.container}.{s.name}" if s.container else s.name) for s in symbols]
    assert got == EXPECTED[file]


def test_signatures_and_docs_as_written():
    by_name = {s.name: s for s in extract_symbols(load("go/stock/stock.go"))}
    assert by_name["Reorder"].signature == "func Reorder(item Item, threshold int) (bool, error)"
    assert by_name["Reorder"].doc == ("// Reorder reports whether an item should be reordered "
                                      "at the given threshold.")
    assert by_name["Item"].signature == (
        "type Item struct {\n\tSKU      string\n\tOnHand   int\n\tReserved int\n}")
    assert by_name["DefaultThreshold"].signature == "const DefaultThreshold = 10"
    rust = {s.name: s for s in extract_symbols(load("rust/src/geometry.rs"))}
    assert rust["Shape"].doc == "/// A plane shape."  # the doc above #[derive(...)]
    assert rust["scaled"].container == "Shape" and rust["scaled"].line == 21
    js = {s.name: s for s in extract_symbols(load("javascript/src/format.js"))}
    assert js["formatCurrency"].doc.splitlines()[1] == (
        " * Format an amount in minor units (cents) as a currency string.")
    assert js["padLeft"].signature == "export const padLeft = (text, width) =>"
    py = {s.name: s for s in extract_symbols(load("python/shop/pricing.py"))}
    assert py["price_of"].signature == "def price_of(self, sku: str) -> Decimal:"
    assert py["price_of"].doc == '"""Unit price of a SKU; KeyError when it is not listed."""'


def test_long_definitions_are_capped():
    fields = "".join(f"    field_{i}: int\n" for i in range(500))
    doc = Document("file:///w/big.rs", "pub struct Big {\n" + fields + "}\n", "rust")
    (big,) = extract_symbols(doc)
    assert len(big.signature.encode()) <= MAX_SIGNATURE_BYTES + 8
    assert big.signature.endswith("...")


def test_build_lookup_and_resolve():
    index = SymbolIndex()
    assert index.build([FIXTURES]) == len(EXPECTED) + 1  # + the empty shop/__init__.py
    assert [s.path.endswith("geometry.rs") for s in index.lookup("area")] == [True]
    root = FIXTURES.as_posix()
    assert index.resolve(["stock/"]) == {f"{root}/go/stock/stock.go"}
    assert index.resolve(["shop/pricing"]) == {f"{root}/python/shop/pricing.py"}
    assert index.resolve([f"{root}/c/src/ringbuf"]) == {f"{root}/c/src/ringbuf.h",
                                                          f"{root}/c/src/ringbuf.c"}
    members = [s.name for s in index.members(f"{root}/python/shop/pricing.py", "PriceList")]
    assert members == ["__init__", "price_of", "__contains__"]


def python_project(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(FIXTURES / "python", project)
    index = SymbolIndex()
    index.build([project])
    return project, index


def related_names(index, cart, anchor: str) -> set[str]:
    ctx = ContextBuilder(index, ContextSettings()).build(cart, place(cart, anchor))
    return {s.name for s in ctx.related if s.kind == "definition"}


def test_index_follows_edits_of_an_open_document(tmp_path):
    project, index = python_project(tmp_path)
    pricing_path = project / "shop" / "pricing.py"
    pricing = Document(path_to_uri(pricing_path), pricing_path.read_text(), "python")
    cart = load(project / "shop" / "cart.py")
    anchor = "return apply_discount(gross, self.discount_percent)"

    # Add a function in pricing.py, call it from cart.py: its definition becomes related.
    end = len(pricing.source)
    pricing.replace_bytes(end, end, '\n\ndef bulk_discount(amount: Decimal) -> Decimal:\n'
                          '    """Five per cent off large orders."""\n'
                          '    return apply_discount(amount, 5)\n', 2)
    index.update_document(pricing.snapshot())
    place(cart, anchor, "\n        extra = bulk_discount(|)")
    assert "bulk_discount" in related_names(index, cart, "extra = bulk_discount(")

    # Rename it (and the call): the old name is gone from the index, the new one is related.
    start = pricing.source.index(b"bulk_discount")
    pricing.replace_bytes(start, start + len("bulk_discount"), "volume_discount", 3)
    index.update_document(pricing.snapshot())
    assert index.lookup("bulk_discount") == ()
    call = cart.source.index(b"bulk_discount")
    cart.replace_bytes(call, call + len("bulk_discount"), "volume_discount", cart.version + 1)
    names = related_names(index, cart, "extra = volume_discount(")
    assert "volume_discount" in names and "bulk_discount" not in names

    # Delete it: no definition is related any more.
    start = pricing.source.index(b"\n\ndef volume_discount")
    pricing.replace_bytes(start, len(pricing.source), "\n", 4)
    index.update_document(pricing.snapshot())
    assert index.lookup("volume_discount") == ()
    assert "volume_discount" not in related_names(index, cart, "extra = volume_discount(")


def test_index_follows_the_disk(tmp_path):
    project, index = python_project(tmp_path)
    new = project / "shop" / "shipping.py"
    new.write_text('def shipping_cost(weight: float) -> float:\n    """Flat rate."""\n'
                   "    return 4.5\n")
    index.update_path(new)
    assert [s.name for s in index.lookup("shipping_cost")] == ["shipping_cost"]
    new.write_text("def delivery_cost(weight: float) -> float:\n    return 4.5\n")
    index.update_path(new)
    assert index.lookup("shipping_cost") == () and len(index.lookup("delivery_cost")) == 1
    new.unlink()
    index.update_path(new)  # a file that is gone is removed
    assert index.lookup("delivery_cost") == ()
    index.remove(project / "shop")  # a deleted folder takes its files along
    assert index.lookup("apply_discount") == () and len(index) == 0


def test_recent_edits_are_remembered_per_region(tmp_path):
    project, index = python_project(tmp_path)
    pricing = load(project / "shop" / "pricing.py")
    for offset in (place(pricing, "TAX_RATE = "), place(pricing, "TAX_RATE = D")):
        index.note_edit(pricing, offset)  # two keystrokes in one region: one entry
    index.note_edit(pricing, place(pricing, "return self._prices[sku]"))
    edits = index.recent_edits()
    assert len(edits) == 2
    assert "return self._prices[sku]" in edits[0].text  # most recent first
    assert 'TAX_RATE = Decimal("0.20")' in edits[1].text

    cart = load(project / "shop" / "cart.py")
    ctx = ContextBuilder(index, ContextSettings()).build(cart, place(cart, "def total(self)"))
    assert [s.kind for s in ctx.related].count("recent_edit") == 2


def test_discovery_skips_ignored_secret_and_dependency_files(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def run():\n    pass\n")
    (tmp_path / "node_modules" / "lib").mkdir(parents=True)
    (tmp_path / "node_modules" / "lib" / "index.js").write_text("function dep() {}\n")
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "out.py").write_text("def generated():\n    pass\n")
    (tmp_path / ".gitignore").write_text("generated/\n")
    (tmp_path / "server.key").write_text("def not_code(): pass\n")
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "keys.py").write_text("def hidden():\n    pass\n")
    (tmp_path / "notes.txt").write_text("text\n")
    index = SymbolIndex(excludes=["private/"])
    index.build([tmp_path])
    assert [p.rsplit("/", 1)[-1] for p in index.files()] == ["app.py"]


def test_concurrent_build_and_lookups_do_not_fail(tmp_path):
    for i in range(60):
        (tmp_path / f"m{i}.py").write_text(f"def common():\n    return {i}\n\ndef f{i}():\n"
                                           "    pass\n")
    index = SymbolIndex()
    errors: list[BaseException] = []

    def reader():
        try:
            for _ in range(2000):
                for symbol in index.lookup("common"):
                    assert symbol.name == "common"
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    index.build([tmp_path], batch=5)
    thread.join()
    assert not errors and len(index.lookup("common")) == 60


def test_the_index_keeps_its_bounds(tmp_path):
    for i in range(5):
        (tmp_path / f"m{i}.py").write_text(f"def f{i}():\n    pass\n")
    (tmp_path / "big.py").write_text("x = 1\n" * 500)  # 3,000 bytes
    capped = SymbolIndex(max_files=3)
    assert capped.build([tmp_path]) == 3 and len(capped) == 3  # the walk stops at the cap
    small = SymbolIndex(max_file_bytes=2000)
    assert small.build([tmp_path]) == 5
    assert small.problems == [f"{tmp_path}/big.py: skipped, 3.0 KB is over the 2.0 KB limit "
                              "(maxFileBytes)"]
