"""Step definitions: parse the sentence, call one library function, assert on its result."""
