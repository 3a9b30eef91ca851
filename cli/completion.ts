// Shell completion for `agentry`: its commands, the kinds' names, the output formats, local
// files for cp, and the flags of exec, task and logs.
import type { KindInfo } from "../clients/typescript/index.ts";

export const SHELLS = ["bash", "zsh", "fish"] as const;
const COMMANDS = ["get", "create", "delete", "watch", "exec", "cp", "task", "logs", "completion", "config"];
const FLAGS: Record<string, string> = {
  exec: "--env --workdir --timeout --stdin",
  task: "--timeout --output",
  logs: "--run --follow --tail --since --timestamps --container --pod",
};
const FORMAT_WORDS = ["table", "wide", "json", "yaml", "name"];

export function completionScript(shell: (typeof SHELLS)[number], kinds: KindInfo[]): string {
  const kindWords = kinds.flatMap((k) => [k.plural, ...k.shortNames]).join(" ");
  if (shell === "fish")
    return [
      "# agentry completion for fish: agentry completion fish | source",
      `complete -c agentry -f -n __fish_use_subcommand -a "${COMMANDS.join(" ")}"`,
      `complete -c agentry -f -n "__fish_seen_subcommand_from get delete watch create" -a "${kindWords}"`,
      `complete -c agentry -f -n "__fish_seen_subcommand_from completion" -a "${SHELLS.join(" ")}"`,
      `complete -c agentry -f -n "__fish_seen_subcommand_from config" -a "set-context use-context view"`,
      `complete -c agentry -F -n "__fish_seen_subcommand_from cp"`,
      ...Object.entries(FLAGS).flatMap(([c, flags]) =>
        flags
          .split(" ")
          .map((f) => `complete -c agentry -n "__fish_seen_subcommand_from ${c}" -l ${f.slice(2)}`),
      ),
      `complete -c agentry -s o -l output -x -a "${FORMAT_WORDS.join(" ")} text"`,
      "complete -c agentry -s n -l namespace -x",
    ].join("\n");
  const bash = `_agentry() {
  local cur prev cmd
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  cmd="\${COMP_WORDS[1]}"
  case "$prev" in
    -o|--output) COMPREPLY=($(compgen -W "${FORMAT_WORDS.join(" ")} text" -- "$cur")); return ;;
    -f|--filename|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W "${COMMANDS.join(" ")}" -- "$cur")); return
  fi
  case "$cmd" in
    get|delete|watch|create) [[ $COMP_CWORD -eq 2 ]] && COMPREPLY=($(compgen -W "${kindWords}" -- "$cur")) ;;
    cp) COMPREPLY=($(compgen -f -- "$cur")) ;;
${Object.entries(FLAGS)
  .map(([c, flags]) => `    ${c}) [[ "$cur" == -* ]] && COMPREPLY=($(compgen -W "${flags}" -- "$cur")) ;;`)
  .join("\n")}
    completion) COMPREPLY=($(compgen -W "${SHELLS.join(" ")}" -- "$cur")) ;;
    config) COMPREPLY=($(compgen -W "set-context use-context view" -- "$cur")) ;;
  esac
}`;
  if (shell === "zsh")
    return `# agentry completion for zsh: source <(agentry completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n${bash}\ncomplete -F _agentry agentry`;
  return `# agentry completion for bash: source <(agentry completion bash)\n${bash}\ncomplete -F _agentry agentry`;
}
