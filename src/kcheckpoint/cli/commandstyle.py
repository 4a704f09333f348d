"""One help style for every command, and the global options every command also accepts.

Arguments are shown in capitals (``ARCHIVE``, ``PATH...``), options with a value name
(``--pid PID``) or their choices (``--format [text|json]``), never with a type label. This is the
one module that reaches into typer's click layer.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from .output import set_debug, set_no_times, set_quiet


def _debug(value: bool) -> None:
    if value:
        set_debug(True)


def _quiet(value: bool) -> None:
    if value:
        set_quiet(True)


def _no_times(value: bool) -> None:
    if value:
        set_no_times(True)


def _global_options_holder(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            callback=_debug,
            expose_value=False,
            help="Show tracebacks of internal errors.",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", callback=_quiet, expose_value=False, help="Hide warnings and progress."
        ),
    ] = False,
    no_times: Annotated[
        bool,
        typer.Option(
            "--no-times",
            callback=_no_times,
            expose_value=False,
            help="Leave the start and end times out of JSON provenance.",
        ),
    ] = False,
) -> None:
    """Only its parameters are used."""


def global_options() -> list[Any]:
    """-q, --debug and --no-times, accepted after the command as well as before it."""
    holder = typer.Typer(add_completion=False)
    holder.command()(_global_options_holder)
    return [p for p in typer.main.get_command(holder).params if p.name != "help"]


def argument_name(param: Any) -> str:
    """An argument's name as help and usage show it: capitals, '...' when it repeats."""
    name = str(param.metavar or param.name).upper()
    if param.nargs != 1 and not name.endswith("..."):
        name += "..."
    return name


def _choices(param: Any) -> list[str] | None:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and descriptor.is_choice and descriptor.choices:
        return [str(getattr(c, "value", c)) for c in descriptor.choices]
    choices = getattr(getattr(param, "type", None), "choices", None)
    return [str(c) for c in choices] if choices else None


def _takes_value(param: Any) -> bool:
    return not getattr(param, "is_flag", False) and not getattr(param, "count", False)


def option_names(param: Any) -> str:
    """``-o, --format [text|json]``, ``--pid PID``, ``--hash / --no-hash``."""
    shorts = sorted(param.opts, key=lambda o: (o.startswith("--"), o))
    names = ", ".join(shorts)
    if param.secondary_opts:
        names += " / " + ", ".join(param.secondary_opts)
    if _takes_value(param):
        choices = _choices(param)
        if param.metavar:
            names += " " + str(param.metavar)
        elif choices:
            names += " [" + "|".join(choices) + "]"
        else:
            names += " " + _value_name(param)
    return names


def _value_name(param: Any) -> str:
    """N for a number, else the option's name: ``--context N``, ``--pid PID``."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    name = str(param.name).upper()
    if annotation in (int, float, list[int]) and not name.endswith("PID"):
        return "N"
    return name


def _default_text(param: Any) -> str | None:
    if not _takes_value(param) or param.required or param.show_default is False:
        return None
    default = param.default
    if default is None or default == () or default == [] or callable(default):
        return None
    if isinstance(param.show_default, str):
        return param.show_default
    return str(getattr(default, "value", default))


def _range_text(param: Any) -> str | None:
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"at least {low}"
    if high is not None:
        return f"at most {high}"
    return None


def option_record(param: Any) -> tuple[str, str] | None:
    """The help line of one option: its names, and its help with default and range."""
    if param.hidden:
        return None
    extra = []
    if (default := _default_text(param)) is not None:
        extra.append(f"default: {default}")
    if (limits := _range_text(param)) is not None:
        extra.append(limits)
    envvar = getattr(param, "envvar", None)
    if envvar and getattr(param, "show_envvar", False):
        names = [envvar] if isinstance(envvar, str) else list(envvar)
        extra.append(f"env: {', '.join(names)}")
    text = param.help or ""
    if extra:
        text = f"{text} [{'; '.join(extra)}]".strip()
    return option_names(param), text


class UsageStyle:
    """Usage line and Arguments/Options sections in the one style."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = ["[OPTIONS]"]
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            if param.param_type_name == "argument":
                name = argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
        subcommand = getattr(self, "subcommand_metavar", None)
        if subcommand:
            pieces.append(subcommand)
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments = []
        options = []
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            if param.param_type_name == "argument":
                arguments.append((argument_name(param), getattr(param, "help", None) or ""))
            elif (record := option_record(param)) is not None:
                options.append(record)
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)
        format_commands = getattr(self, "format_commands", None)
        if format_commands is not None:
            format_commands(ctx, formatter)


class KCommand(UsageStyle, TyperCommand):
    """A kcheckpoint command: the one help style, plus the global options."""

    def finish(self) -> None:
        """Name arguments in capitals everywhere (errors too), and add the global options."""
        for param in self.params:
            if param.param_type_name == "argument":
                param.metavar = argument_name(param)
        taken = {o for p in self.params for o in (*p.opts, *p.secondary_opts)}
        for option in global_options():
            if not taken.intersection(option.opts):
                self.params.append(option)
