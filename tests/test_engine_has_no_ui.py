import subprocess
import sys


def test_engine_imports_no_ui_code():
    code = (
        "import sys, engine, engine.snapshots\n"
        "for name in engine.__all__: getattr(engine, name, None)\n"
        "print(' '.join(m for m in ('textual', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
