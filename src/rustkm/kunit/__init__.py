"""KUnit suites inside out-of-tree Rust modules: read the KTAP they print (ktap), find their
suites and cases in a built .ko (collect), run them in a VM (run), report them like kunit.py
(report), and hand each case to pytest (pytest_items)."""
