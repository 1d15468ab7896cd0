"""`make demo`: bring the local stack up, prove it through the real SDKs, and tear it down.

1. ARM: list the seeded Container Apps environment (ContainerAppsAPIClient, managed identity).
2. Key Vault: read the GitHub App id (SecretClient, challenge authentication).
3. GitHub: commit examples/apps into the stand-in's repository and read it back (PyGithub, GitHub App).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout: emulators/ is not an installed package

from emulators.launcher import Stack, start_stack  # noqa: E402


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def commit_examples(repo_dir: Path) -> str:
    shutil.copytree(HERE / "apps", repo_dir / "apps", dirs_exist_ok=True)
    git = [
        "git",
        "-C",
        str(repo_dir),
        "-c",
        "user.name=SynosCD demo",
        "-c",
        "user.email=demo@synoscd.invalid",
    ]
    subprocess.run([*git, "add", "apps"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "Add the example ops repository"], check=True)
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def show_arm(env: dict[str, str]) -> None:
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    client = ContainerAppsAPIClient(
        DefaultAzureCredential(), env["SYNOSCD_AZURE_SUBSCRIPTION_ID"], base_url=env["SYNOSCD_ARM_ENDPOINT"]
    )
    for e in client.managed_environments.list_by_resource_group(env["SYNOSCD_AZURE_RESOURCE_GROUP"]):
        print(
            f"environment {e.name}  location={e.location}  state={e.properties.provisioning_state.value}  "
            f"domain={e.properties.default_domain}"
        )


def show_keyvault(env: dict[str, str]) -> None:
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    vault = SecretClient(
        env["SYNOSCD_KEYVAULT_URL"], DefaultAzureCredential(), verify_challenge_resource=False
    )
    secret = vault.get_secret("github-app-id")
    print(f"secret github-app-id = {secret.value}  (version {secret.properties.version[:8]}...)")


def show_github(env: dict[str, str], sha: str) -> None:
    from github import Auth, Github, GithubRetry

    auth = Auth.AppAuth(int(env["SYNOSCD_GITHUB_APP_ID"]), env["SYNOSCD_GITHUB_APP_PRIVATE_KEY"])
    gh = Github(
        base_url=env["SYNOSCD_GITHUB_API_URL"],
        auth=auth.get_installation_auth(int(env["SYNOSCD_GITHUB_APP_INSTALLATION_ID"])),
        retry=GithubRetry(total=2, backoff_factor=0.1),
        seconds_between_requests=0,
    )
    repo = gh.get_repo(f"{env['SYNOSCD_GITHUB_REPO_OWNER']}/{env['SYNOSCD_GITHUB_REPO_NAME']}")
    head = repo.get_branch(env["SYNOSCD_GITHUB_BRANCH"]).commit.sha
    print(
        f"repository {repo.full_name}  branch {env['SYNOSCD_GITHUB_BRANCH']} at {head[:12]} "
        f"(committed {sha[:12]})"
    )
    for entry in repo.get_git_tree(head, recursive=True).tree:
        if entry.type == "blob":
            print(f"  {entry.path:<32} {entry.size:>5} bytes  blob {entry.sha[:12]}")


def main() -> int:
    step("starting the local stack (Azurite, ARM, Key Vault and GitHub stand-ins)")
    stack: Stack = start_stack()
    try:
        os.environ.update(stack.env)
        print(
            f"ARM {stack.env['SYNOSCD_ARM_ENDPOINT']}  Key Vault {stack.env['SYNOSCD_KEYVAULT_URL']}  "
            f"GitHub {stack.env['SYNOSCD_GITHUB_API_URL']}"
        )
        sha = commit_examples(Path(stack.env["SYNOSCD_EMULATOR_GITHUB_REPO_DIR"]))
        step("1. ARM (azure-mgmt-appcontainers, managed identity): the seeded environment")
        show_arm(stack.env)
        step("2. Key Vault (azure-keyvault-secrets): a GitHub App secret")
        show_keyvault(stack.env)
        step("3. GitHub (PyGithub, GitHub App installation token): the sample ops repository")
        show_github(stack.env, sha)
    finally:
        step("stopping the local stack")
        stack.stop()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
