"""``slawatch completion bash|zsh``: a shell completion script made from the CLI's own
parser, so it always knows every subcommand, option and choice.

Install (the README's one-liner)::

    echo 'eval "$(slawatch completion bash)"' >> ~/.bashrc     # or ~/.zshrc with zsh

zsh runs the same function through ``bashcompinit``. Words that are not options
complete as file names (definition files, samples).
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field

SHELLS = ("bash", "zsh")


@dataclass
class Command:
    """What the completion knows of one (sub)command."""

    options: list[str] = field(default_factory=list)
    #: option → the values it takes (argparse ``choices``)
    choices: dict[str, list[str]] = field(default_factory=dict)
    #: positional choices (``report --format`` aside: ``import openslo``)
    positional: list[str] = field(default_factory=list)
    subcommands: dict[str, Command] = field(default_factory=dict)


def describe(parser: argparse.ArgumentParser) -> Command:
    """The completion's view of ``parser`` and its subparsers (argparse's own tables)."""
    command = Command()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                command.subcommands[name] = describe(sub)
        elif action.option_strings:
            command.options.extend(action.option_strings)
            if action.choices is not None:
                for option in action.option_strings:
                    command.choices[option] = [str(c) for c in action.choices]
        elif action.choices is not None:
            command.positional.extend(str(c) for c in action.choices)
    return command


def _words(values: list[str]) -> str:
    return shlex.quote(" ".join(values))


def _case(path: str, command: Command, out: list[str]) -> None:
    """One ``case`` arm per (sub)command path, e.g. ``keys/create``."""
    subs = sorted(command.subcommands) + command.positional
    out.append(
        f"            {shlex.quote(path)}) subs={_words(subs)} opts={_words(command.options)} ;;"
    )
    for name, sub in sorted(command.subcommands.items()):
        _case(f"{path}/{name}" if path else name, sub, out)


def _choices(path: str, command: Command, out: list[str]) -> None:
    for option, values in sorted(command.choices.items()):
        key = f"{path}:{option}"
        out.append(f"        {shlex.quote(key)}) words={_words(values)} ;;")
    for name, sub in sorted(command.subcommands.items()):
        _choices(f"{path}/{name}" if path else name, sub, out)


def _nested(path: str, command: Command, out: list[str]) -> None:
    """The paths whose next plain word names a subcommand (``keys``, ``source``)."""
    if command.subcommands and path:
        out.append(path)
    for name, sub in command.subcommands.items():
        _nested(f"{path}/{name}" if path else name, sub, out)


def bash_script(parser: argparse.ArgumentParser, prog: str = "slawatch") -> str:
    root = describe(parser)
    arms: list[str] = []
    _case("", root, arms)
    choice_arms: list[str] = []
    _choices("", root, choice_arms)
    nested: list[str] = []
    _nested("", root, nested)
    function = f"_{prog.replace('-', '_')}_complete"
    nested_test = " ".join(shlex.quote(p) for p in ["", *nested])
    lines = [
        f"# {prog} completion, made by `{prog} completion`: subcommands, options, choices",
        f"{function}() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    local path="" word words="" subs="" opts="" i',
        "    local extra=0 p consumed",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        word="${COMP_WORDS[i]}"',
        '        [[ "$word" == -* ]] && continue',
        "        consumed=0",
        f"        for p in {nested_test}; do",
        '            if [[ "$path" == "$p" ]]; then',
        '                path="${path:+$path/}$word"',
        "                consumed=1",
        "                break",
        "            fi",
        "        done",
        "        ((consumed)) || ((extra++))",
        "    done",
        '    case "$path:$prev" in',
        *choice_arms,
        "        *) words=__none__ ;;",
        "    esac",
        '    if [[ "$words" == __none__ ]]; then',
        '        case "$path" in',
        *arms,
        "        esac",
        '        if [[ "$cur" == -* ]]; then',
        '            words="$opts"',
        '        elif [[ -n "$subs" && $extra == 0 ]]; then',
        '            words="$subs"',
        "        else",
        "            return 0  # file names (complete -o default)",
        "        fi",
        "    fi",
        '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "}",
        f"complete -o default -F {function} {prog}",
        "",
    ]
    return "\n".join(lines)


def zsh_script(parser: argparse.ArgumentParser, prog: str = "slawatch") -> str:
    return (
        "# zsh: the bash completion through bashcompinit\n"
        "autoload -U +X compinit && compinit\n"
        "autoload -U +X bashcompinit && bashcompinit\n" + bash_script(parser, prog)
    )


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    return bash_script(parser) if shell == "bash" else zsh_script(parser)
