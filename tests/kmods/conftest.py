"""kunit_selftest fails and crashes on purpose: a plain pytest run passes it by; its KUnit
cases are collected when it is named (`pytest tests/kmods/kunit_selftest`), as the tests that
expect those failures do."""

collect_ignore = ["kunit_selftest"]
