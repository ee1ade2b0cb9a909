"""`rustkm fuzz`: hammer every file a module creates, on the debug kernel, and keep what breaks
as a minimized, replayable regression test."""
