"""Fault tests: the system under real failures (store restarts, killed processes, full disks,
hostile feeds), each run by CI."""
