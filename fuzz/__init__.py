"""Coverage-guided fuzzing (atheris / libFuzzer) of every Veil parser. See docs/fuzzing.md."""
