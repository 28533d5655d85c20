"""Pilot tests of moving around the dashboard: the palette, j/k, the filter, the sort, focus,
and that no key means two things on one screen (issue 13, points 1-3 and the help of 8)."""

from __future__ import annotations

from typing import Any

from fakes import ScriptedEngine, fixed_clock
from test_app import real_app, settle, settle_slow, summary_text, wait_for
from textual.binding import Binding
from textual.command import CommandList
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import TextArea

from tui.app import HeapwatchApp
from tui.keys import KEYS, NAVIGATION, PALETTE
from tui.palette import SafeCommandPalette
from tui.screens.alert_detail import AlertScreen
from tui.screens.help import HelpScreen
from tui.screens.item_detail import ItemScreen
from tui.screens.worker_detail import WorkerScreen
from tui.widgets.alert_table import AlertTable
from tui.widgets.heap_table import HeapTable
from tui.widgets.key_bar import KeyBar
from tui.widgets.live_table import LiveTable
from tui.widgets.worker_table import WorkerTable


async def palette_prompts(pilot: Pilot) -> list[str]:
    """The palette's entries as they read, once it has listed any."""
    palette = pilot.app.screen
    assert isinstance(palette, SafeCommandPalette)
    commands = palette.query_one(CommandList)
    await wait_for(pilot, lambda: commands.option_count > 0, "the palette's entries")
    await pilot.pause(0.1)  # the providers' hits arrive in batches
    # Each prompt is the entry's line, then its help line.
    return [str(commands.get_option_at_index(n).prompt).splitlines()[0]
            for n in range(commands.option_count)]


def read_only_app() -> HeapwatchApp:
    """The app on a source that can only be read (no control capability)."""
    engine = ScriptedEngine()
    engine.read_only = True
    return HeapwatchApp(engine, clock=fixed_clock)


# --------------------------------------------------------------------------- point 2: palette


async def test_the_palette_lists_every_action_with_nothing_typed_and_runs_burst():
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        prompts = await palette_prompts(pilot)
        for entry in ("queue: Burst  b", "workers: Cancel  c", "queue: Aging on/off  a",
                      "diagnose: Capture stacks  t", "view: Filter the focused table  /"):
            assert entry in prompts, prompts
        # Restart needs a stopped run: not offered while this one goes on.
        assert not any(prompt.startswith("run: Restart") for prompt in prompts)
        await pilot.press(*"burst")
        await wait_for(pilot, lambda: str(app.screen.query_one(CommandList).get_option_at_index(
            0).prompt).startswith("queue: Burst"), "burst first")
        await pilot.press("enter")
        await wait_for(pilot, lambda: ("burst", (200,)) in engine.actions, "the burst")
        assert not isinstance(app.screen, SafeCommandPalette)


async def test_the_palette_hides_what_a_read_only_source_cannot_do():
    async with read_only_app().run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        prompts = await palette_prompts(pilot)
        assert "view: Freeze  f" in prompts and "view: Help  ?" in prompts
        assert not any(p.startswith(("queue:", "workers:")) for p in prompts), prompts


def test_every_action_of_the_key_table_is_in_the_palette():
    offered = {action for _, _, action in PALETTE}
    # ctrl+c's "interrupt" is the keyboard's copy-or-quit: the palette offers Quit itself.
    assert offered == {key.action for key in KEYS} - {"command_palette", "interrupt"}


async def test_the_footer_or_the_hint_line_says_how_to_open_the_palette():
    for size in ((80, 24), (120, 40)):
        async with HeapwatchApp(ScriptedEngine(alerts=False), clock=fixed_clock).run_test(
                size=size) as pilot:
            await settle(pilot)
            footer = str(pilot.app.query_one(KeyBar).render())
            hint = str(pilot.app.query_one("#hint").render())
            assert "^p" in footer or "^p for every action" in hint, (footer, hint)
            if size == (120, 40):
                assert "^p Palette" in footer


# --------------------------------------------------------------------------- point 3: moving


async def test_j_k_and_the_arrows_move_the_cursor_in_the_focused_table():
    async with HeapwatchApp(ScriptedEngine(workers=6), clock=fixed_clock).run_test(
            size=(120, 40)) as pilot:
        await settle(pilot)
        table = pilot.app.query_one(WorkerTable)
        table.focus()
        await pilot.press("j", "j", "down")
        assert table.cursor_row == 3
        await pilot.press("k", "up")
        assert table.cursor_row == 1
        assert table.selected_worker_id == 2


async def test_focus_starts_on_the_first_table_and_tab_moves_it_with_a_visible_cue():
    async with HeapwatchApp(ScriptedEngine(), clock=fixed_clock).run_test(
            size=(120, 40)) as pilot:
        await settle(pilot)
        app = pilot.app
        heap = app.query_one(HeapTable)
        assert app.focused is heap
        panel = app.query_one("#heap-panel")
        focused_border = panel.styles.border_top
        await pilot.press("tab")
        assert app.focused is not heap
        assert panel.styles.border_top != focused_border  # the cue left with the focus
        seen = []
        for _ in range(12):
            seen.append(app.focused)
            await pilot.press("tab")
        tables = [widget for widget in seen if isinstance(widget, LiveTable)]
        assert {type(t) for t in tables} >= {HeapTable, WorkerTable, AlertTable}
        await pilot.press("shift+tab")
        assert app.focused is seen[-1]


async def type_filter(pilot: Pilot, text: str) -> None:
    await pilot.press("slash", *text, "enter")
    await pilot.pause()


async def test_slash_filters_the_workers_by_state_and_escape_clears_it():
    async with HeapwatchApp(ScriptedEngine(workers=6), clock=fixed_clock).run_test(
            size=(120, 40)) as pilot:
        await settle(pilot)
        table = pilot.app.query_one(WorkerTable)
        table.focus()
        await type_filter(pilot, "backoff")
        assert table.shown_keys == ["2", "5"]  # workers 2 and 5 are the ones in backoff
        assert table.has_focus
        assert "filter /backoff" in str(pilot.app.query_one("#workers-panel").border_title)
        await settle(pilot)
        assert table.shown_keys == ["2", "5"]  # the filter holds across refreshes
        await pilot.press("escape")
        assert table.shown_keys == [str(n) for n in range(1, 7)]
        assert "filter" not in str(pilot.app.query_one("#workers-panel").border_title)
        await type_filter(pilot, "job-303")  # text in the item column
        assert table.shown_keys == ["3"]


async def test_filtering_the_alerts_never_changes_the_summary_count():
    async with HeapwatchApp(ScriptedEngine(), clock=fixed_clock).run_test(
            size=(120, 40)) as pilot:
        await settle_slow(pilot)
        table = pilot.app.query_one(AlertTable)
        before = summary_text(pilot.app)
        table.focus()
        await type_filter(pilot, "loop")
        assert table.shown_keys and all(
            table.get_cell(key, "kind") == "loop-blocked" for key in table.shown_keys)
        await settle(pilot)
        assert summary_text(pilot.app) == before
        await pilot.press("escape")
        assert len(table.shown_keys) == 3


async def test_a_priority_filter_asks_the_engine_for_that_prioritys_top():
    app, engine = real_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: engine.running, "the engine's start")
        for n in range(2_000):
            engine.pool.submit_nowait(f"urgent-{n}", priority=0)
        for n in range(5):
            engine.pool.submit_nowait(f"background-{n}", priority=9)
        await settle_slow(pilot)
        # The snapshot's top of the heap is all priority 0: a filter of it would find nothing.
        assert all(entry.priority == 0 for entry in app.snapshot.top)
        heap = app.query_one(HeapTable)
        assert app.focused is heap
        await type_filter(pilot, "9")
        assert len(heap.shown_keys) == 5
        assert all(heap.get_cell(key, "priority") == "9" for key in heap.shown_keys)
        assert heap.get_cell(heap.shown_keys[0], "item").startswith("'background-0'")
        await pilot.press("escape")
        assert all(heap.get_cell(key, "priority") == "0" for key in heap.shown_keys)


async def test_s_cycles_the_sort_and_a_header_click_sorts_by_that_column():
    async with HeapwatchApp(ScriptedEngine(workers=6), clock=fixed_clock).run_test(
            size=(120, 40)) as pilot:
        await settle(pilot)
        table = pilot.app.query_one(WorkerTable)
        table.focus()
        await pilot.press("S")
        assert table.shown_keys == ["1", "2", "3", "4", "5", "6"]
        assert "worker ▲" in table.render_line(0).text
        await pilot.press("S")
        assert table.shown_keys == ["6", "5", "4", "3", "2", "1"]
        assert "worker ▼" in table.render_line(0).text
        assert "sorted by worker ▼" in str(pilot.app.query_one("#workers-panel").border_title)
        # A click on the header of 'done' (done grows with the worker id in the fake).
        x = table.render_line(0).text.index("done") + 1
        await pilot.click(WorkerTable, offset=(x, 0))
        assert table.sort_by == (5, False) and table.shown_keys == ["1", "2", "3", "4", "5", "6"]
        await pilot.click(WorkerTable, offset=(x, 0))
        assert table.shown_keys == ["6", "5", "4", "3", "2", "1"]
        await settle(pilot)
        assert table.shown_keys == ["6", "5", "4", "3", "2", "1"]  # held across refreshes
        await pilot.click(WorkerTable, offset=(x, 0))
        assert table.sort_by is None and "▲" not in table.render_line(0).text


# --------------------------------------------------------------------------- points 1 and 8


def chain_bindings(app: Any, screen: Any, focused: Widget | None) -> dict[str, set[str]]:
    """Every key bound on this screen with the focus on `focused`: the focused widget and its
    ancestors, the screen and the app (each class's own BINDINGS, read over the MRO)."""
    nodes: list[Any] = [app, screen]
    if focused is not None:
        nodes += [node for node in focused.ancestors_with_self if node not in nodes]
    meanings: dict[str, set[str]] = {}
    close = {"dismiss", "back", "app.pop_screen", "close", "cancel"}
    for node in nodes:
        # As Textual merges them: a subclass's binding of a key replaces its base's.
        own: dict[str, str] = {}
        for cls in reversed(type(node).__mro__):
            for binding in cls.__dict__.get("BINDINGS", ()):
                if not isinstance(binding, Binding):
                    binding = Binding(*binding)
                if binding.system:
                    continue  # Textual's own ctrl+c (copy or quit: issue 13 point 5)
                for one in binding.key.split(","):
                    own[one.strip()] = binding.action
        for key, action in own.items():
            meaning = "close" if action in close else action.removeprefix("app.")
            # ctrl+c is one meaning in two bindings: the screen copies a selection, and with
            # nothing selected the app's "interrupt" quits (issue 13 point 5).
            meaning = "copy" if meaning in ("screen.copy_text", "interrupt") else meaning
            meanings.setdefault(key, set()).add(meaning)
    return meanings


async def test_no_key_means_two_things_on_any_screen():
    engine = ScriptedEngine(workers=4)
    app = HeapwatchApp(engine, clock=fixed_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle_slow(pilot)
        walked = []
        for table in app.query(LiveTable):
            table.focus()
            await pilot.pause()
            walked.append((type(table).__name__, chain_bindings(app, app.screen, table)))
        screens = [HelpScreen(), AlertScreen(app.snapshot.watchdog.alerts[0]),
                   WorkerScreen(app.snapshot.pool.workers[0]), ItemScreen(app.snapshot.top[0])]
        for screen in screens:
            await app.push_screen(screen)
            await pilot.pause()
            walked.append((type(screen).__name__, chain_bindings(app, screen, app.focused)))
            for text in screen.query(TextArea):  # tab reaches the selectable texts
                text.focus()
                await pilot.pause()
                walked.append((f"{type(screen).__name__} text", chain_bindings(app, screen, text)))
            app.pop_screen()
            await pilot.pause()
        for where, meanings in walked:
            doubled = {key: sorted(m) for key, m in meanings.items() if len(m) > 1}
            assert not doubled, f"{where}: {doubled}"


async def test_help_lists_the_navigation_keys_and_dims_what_cannot_be_done():
    async with read_only_app().run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        table = pilot.app.screen.query_one("#help-keys")
        rows = {str(table.get_row_at(n)[0]): table.get_row_at(n) for n in range(table.row_count)}
        for keys, _ in NAVIGATION:
            assert keys in rows
        for shown in ("tab / shift+tab", "escape", "^q", "/", "^p"):
            assert shown in rows
        assert "(not now)" in str(rows["b"][1]) and "not now" not in str(rows["f"][1])
