# Deliberate syntax error (test fixture).
def run(:
    return 1
