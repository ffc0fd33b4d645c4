"""What a run's process is: the command line and environment for each Glue command.

- ``pythonshell``: ``python <script> --JOB_NAME <name> --JOB_RUN_ID <id> --key value ...``.
- ``glueetl``: Spark's own ``spark-submit`` (from the pinned pyspark) runs
  ``runtime/glue_driver.py <script> --JOB_NAME ...`` - the driver wrapper runs the script as
  ``__main__`` and records the exception that ends it - with the awsglue library
  (``runtime/awsglue``) on the Python path, the job's capacity mapped to Spark's resources, and
  Glue's special parameters (``--extra-py-files``, ``--extra-jars``, ``--conf``,
  ``--enable-spark-ui``) turned into spark-submit options, and the driver JVM mapping the shared
  class-data archive (``class_archive``). ``plan_warm_up`` plans the glueetl run of
  ``runtime/class_archive_warmup.py`` that writes that archive.

Both get the Glue arguments as Glue passes them, and an environment built from nothing
(``job_env``): an allow-list, the operator's ``--job-env``, and the variables the awsglue
library reads (docs/awsglue.md): ``AWSGLUE_JOB_TYPE``, ``AWSGLUE_S3_ROOT`` and the bookmark
files. The script and ``--extra-*`` files are local paths (S3 paths map to files under
``--s3-root``), held to the rules in ``script_files``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import os
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glue_vocabulary.argument_keys import key_problem, value_problem
from scheduler_service.class_archive import claim_writing, driver_java_options, write_options
from scheduler_service.job_env import base_environment
from scheduler_service.run_access import (
    ROOT_UID,
    Identity,
    R,
    X,
    java_path,
    reach_problem,
    unreachable,
)
from scheduler_service.runner import LaunchError
from scheduler_service.script_files import checked_file

SUPPORTED_COMMANDS = ("pythonshell", "glueetl")
RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"
DRIVER = RUNTIME_DIR / "glue_driver.py"
WARM_UP = RUNTIME_DIR / "class_archive_warmup.py"
# Files in the run directory the awsglue library and the driver wrapper read and write.
BOOKMARK_IN = "bookmark-in.json"
BOOKMARK_OUT = "bookmark.json"
SCRIPT_ERROR = "script-error.json"
SPARK_EVENTS = "spark-events"
LOCAL_MASTER = "local"

# AWS's worker types (docs.aws.amazon.com/glue/latest/dg/worker-types.html): vCPUs and memory
# (GiB) per worker. One worker hosts the driver; each of the others runs one executor, whose
# heap is sized as on AWS's G.1X (10 GiB of 16).
WORKER_TYPES: dict[str, tuple[int, int]] = {
    "G.025X": (2, 4),
    "G.1X": (4, 16),
    "G.2X": (8, 32),
    "G.4X": (16, 64),
    "G.8X": (32, 128),
    # A Standard worker is 1 DPU (4 vCPU, 16 GiB); MaxCapacity counts them.
    "Standard": (4, 16),
}
HEAP_SHARE = 10 / 16
# What AWS's console proposes for a new Spark job.
DEFAULT_WORKER_TYPE = "G.1X"
DEFAULT_WORKERS = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandSettings:
    """The scheduler settings that shape a run's command."""

    python: str
    """The interpreter of pythonshell scripts and of Spark's Python driver and workers."""
    spark_master: str = LOCAL_MASTER
    """``local`` (sized from the job and capped by this machine), ``spark://HOST:PORT`` or
    ``k8s://...``."""
    s3_root: Path | None = None
    """The directory that stands for S3 (``s3://bucket/key`` is ``<s3_root>/bucket/key``)."""
    spark_master_ui: str | None = None
    """A standalone master's web UI (``http://HOST:8080``): read before each run to check that
    some worker can hold its executors (``spark_cluster``)."""
    # -- what a run sees and may read (job_env, run_access) -------------------------------------
    passed_env: Mapping[str, str] = field(default_factory=dict)
    """The scheduler's values of ``job_env.PASSED_THROUGH`` (PATH, locale, JAVA_HOME ...)."""
    job_env: Mapping[str, str] = field(default_factory=dict)
    """Variables the operator adds to every run's environment (``--job-env``)."""
    script_roots: tuple[Path, ...] = ()
    """Resolved directories ScriptLocation and ``--extra-*`` files must lie in; () allows any."""
    private_paths: tuple[Path, ...] = ()
    """The scheduler's own files and directories (data directory, secrets): never a script,
    whoever the run runs as (the S3 root, even inside the data directory, is not private)."""
    run_identity: Identity | None = None
    """Who runs execute as; None: the scheduler's own user."""
    class_archives: Path | None = None
    """Where glueetl drivers share their JVM's class-data archive (``class_archive``); None:
    no archive."""

    @property
    def identity(self) -> Identity:
        """The identity whose permission bits decide what a run may read."""
        return self.run_identity or _service_identity()


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchPlan:
    """A run's command line and its whole environment."""

    argv: list[str]
    env: dict[str, str]
    archive_missing: bool = False
    """glueetl: no class-data archive exists yet for this Spark and JDK, and the run executes
    as the scheduler's own user (the scheduler may then write one: ``warm_up``)."""


def plan_launch(
    run: Mapping[str, Any],
    job_name: str,
    run_id: str,
    arguments: Mapping[str, str],
    run_dir: Path,
    settings: CommandSettings,
    *,
    driver_java: list[str] | None = None,
) -> LaunchPlan:
    """The command that runs ``run`` (a JobRun record in Glue form, with ``_Command``).

    ``driver_java``: a glueetl driver JVM's options instead of the ones that map the shared
    class-data archive (the warm-up's, ``plan_warm_up``).

    Raises:
        LaunchError: unsupported command or PythonVersion, a ScriptLocation that is not a
            local or S3-mapped file, a bad argument, or (glueetl) no Spark installed.
    """
    command = run.get("_Command", {})
    name = command.get("Name")
    if name not in SUPPORTED_COMMANDS:
        raise LaunchError(
            f"Command.Name {name!r} is not supported; this scheduler runs "
            + " and ".join(repr(n) for n in SUPPORTED_COMMANDS)
            + " jobs"
        )
    version = command.get("PythonVersion")
    if isinstance(version, str) and version.startswith("2"):
        raise LaunchError(f"Command.PythonVersion {version!r} is not supported; use 3")
    script = checked_file(command.get("ScriptLocation"), "ScriptLocation", settings)
    glue_args = glue_arguments(job_name, run_id, arguments)
    env = base_environment(settings.passed_env, run_dir) | dict(settings.job_env)
    env |= {
        "AWSGLUE_JOB_TYPE": name,
        "AWSGLUE_BOOKMARK_IN": str(run_dir / BOOKMARK_IN),
        "AWSGLUE_BOOKMARK_OUT": str(run_dir / BOOKMARK_OUT),
        "PYTHONPATH": _python_path(settings.job_env.get("PYTHONPATH")),
    }
    if settings.s3_root is not None:
        env["AWSGLUE_S3_ROOT"] = str(settings.s3_root)
    if name == "pythonshell":
        return LaunchPlan(argv=[settings.python, str(script), *glue_args], env=env)
    env |= {
        "AWSGLUE_SCRIPT_ERROR": str(run_dir / SCRIPT_ERROR),
        "AWSGLUE_GLUE_VERSION": str(run.get("GlueVersion") or ""),
        "PYSPARK_PYTHON": settings.python,
        "PYSPARK_DRIVER_PYTHON": settings.python,
    }
    if settings.spark_master == LOCAL_MASTER:
        # Nothing of a local run listens beyond this machine.
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
    missing = False
    if driver_java is None and settings.class_archives is not None:
        use = driver_java_options(
            settings.class_archives,
            java_path(env),
            _spark_jars(),
            readable=lambda archive: reach_problem(archive, settings.identity, R) is None,
        )
        driver_java = use.options
        # Only runs as the scheduler's own user (its default, or --run-as that same user) lead
        # to a warm-up: as another identity the scheduler is root, and runs no Spark as root.
        missing = use.missing and settings.identity.uid == os.geteuid()
    options = _spark_options(run, arguments, run_dir, settings, driver_java or [])
    argv = [str(spark_submit()), *options, str(DRIVER), str(script), *glue_args]
    return LaunchPlan(argv=argv, env=env, archive_missing=missing)


def plan_warm_up(settings: CommandSettings, work_dir: Path) -> tuple[LaunchPlan, Path] | None:
    """The run of the warm-up script whose driver JVM writes the class-data archive, and the
    ``.tmp`` file it writes; None without an archive directory, when the archive exists, or
    while another warm-up holds its claim (``class_archive.claim_writing``).

    Planned like a run of the scheduler's own user (the same environment, so the same class
    path and JDK as the runs that will map the archive), with bookmarks enabled, in
    ``work_dir``, which also holds its S3 root and its (Java's, Spark's, Python's) temporary
    files: it touches nothing else.

    Raises:
        LaunchError: Spark is not installed.
    """
    if settings.class_archives is None:
        return None
    env = base_environment(settings.passed_env, work_dir) | dict(settings.job_env)
    tmp = claim_writing(settings.class_archives, java_path(env), _spark_jars())
    if tmp is None:
        return None
    own = dataclasses.replace(
        settings,
        s3_root=work_dir / "s3",
        script_roots=(),
        private_paths=(),
        run_identity=None,
    )
    scratch = work_dir / "tmp"
    scratch.mkdir(exist_ok=True)
    plan = plan_launch(
        {
            "JobName": "class-archive-warm-up",
            "_Command": {"Name": "glueetl", "ScriptLocation": str(WARM_UP)},
        },
        "class-archive-warm-up",
        "warm-up",
        {"--job-bookmark-option": "job-bookmark-enable"},
        work_dir,
        own,
        driver_java=[*write_options(tmp), f"-Djava.io.tmpdir={scratch}"],
    )
    env = plan.env | {"TMPDIR": str(scratch), "SPARK_LOCAL_DIRS": str(scratch)}
    return dataclasses.replace(plan, env=env), tmp


def script_error(run_dir: Path) -> str | None:
    """``<type>: <message>`` of the exception that ended a glueetl script, if it recorded one."""
    try:
        data = json.loads((run_dir / SCRIPT_ERROR).read_text())
        return str(data["message"]) or None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def glue_arguments(job_name: str, run_id: str, arguments: Mapping[str, str]) -> list[str]:
    """``--JOB_NAME <name> --JOB_RUN_ID <id>`` and one ``--key value`` pair per argument.

    Glue argument keys start with ``--`` and are passed as given; a key without it gets it
    prefixed (``{"day": "1"}`` is passed as ``--day 1``).

    Raises:
        LaunchError: an argument could be read as ``--JOB_NAME``/``--JOB_RUN_ID``/``--JOB_ID``
            (``glue_vocabulary.argument_keys``: the catalog refuses such arguments, but a job or
            trigger stored before that rule may still hold one), has an empty key, or holds a
            NUL character.
    """
    argv = ["--JOB_NAME", job_name, "--JOB_RUN_ID", run_id]
    for key, value in arguments.items():
        option = key if key.startswith("--") else f"--{key}"
        if option == "--":
            raise LaunchError(f"argument key {key!r} is empty")
        problem = key_problem(option) or value_problem(value)
        if problem is not None:
            raise LaunchError(f"argument {key!r}: {problem}")
        if "\x00" in option or "\x00" in value:
            raise LaunchError(
                f"argument {key!r} holds a NUL character, which no process argument can"
            )
        argv += [option, value]
    return argv


@functools.cache
def spark_submit() -> Path:
    """The pinned pyspark's ``spark-submit``.

    Raises:
        LaunchError: pyspark is not installed.
    """
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise LaunchError("glueetl jobs need Spark, and pyspark is not installed here")
    return Path(spec.origin).parent / "bin" / "spark-submit"


def _spark_jars() -> Path:
    """Spark's jars: the driver's class path."""
    return spark_submit().parent.parent / "jars"


def _python_path(extra: str | None) -> str:
    """runtime/ (awsglue) first, then the operator's ``--job-env PYTHONPATH``."""
    return str(RUNTIME_DIR) + (os.pathsep + extra if extra else "")


@functools.cache
def _service_identity() -> Identity:
    return Identity.current()


def run_needs(settings: CommandSettings) -> list[tuple[Path, int]]:
    """What every run must reach, and how (``run_access.R``/``X``): the interpreter, and when
    it is this process's own its standard library and site-packages; the awsglue runtime and
    the Spark driver wrapper; pyspark, spark-submit and java when installed."""
    needed: list[tuple[Path, int]] = [(Path(settings.python), R | X)]
    if os.path.realpath(settings.python) == os.path.realpath(sys.executable):
        paths = sysconfig.get_paths()
        needed += [(Path(paths[key]), R | X) for key in ("stdlib", "purelib", "platlib")]
    needed += [(RUNTIME_DIR / "awsglue", R | X), (DRIVER, R)]
    spec = importlib.util.find_spec("pyspark")
    if spec is not None and spec.origin is not None:
        pyspark = Path(spec.origin).parent
        needed += [(pyspark, R | X), (pyspark / "bin" / "spark-submit", R | X)]
        java = java_path({**settings.passed_env, **settings.job_env})
        if java is not None:
            needed.append((java, R | X))
    return needed


def check_run_reach(settings: CommandSettings) -> None:
    """Refuse to start when the run identity cannot reach what every run needs.

    Raises:
        ValueError: the first paths it cannot reach, and what to do.
    """
    identity = settings.identity
    if identity.uid == ROOT_UID:
        return
    problems = unreachable(run_needs(settings), identity)
    if problems:
        raise ValueError(
            f"jobs run as {identity.describe()}, which cannot reach what every run needs: "
            + "; ".join(problems[:3])
            + ". Install the project and its Python where that user can read them (e.g. "
            "under /opt, not a 0700 home directory), or run jobs as another user"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Capacity:
    """The Spark resources a job's WorkerType/NumberOfWorkers (or MaxCapacity) ask for."""

    worker_type: str
    workers: int
    cores: int
    """vCPUs per worker."""
    memory_gib: int
    """Memory per worker."""

    @property
    def executors(self) -> int:
        """Executors: one worker hosts the driver (at least one executor)."""
        return max(1, self.workers - 1)

    @property
    def executor_memory(self) -> str:
        """An executor's heap, in spark-submit's notation."""
        return f"{max(1, round(self.memory_gib * HEAP_SHARE))}g"


def capacity(run: Mapping[str, Any]) -> Capacity:
    """The job's capacity: WorkerType and NumberOfWorkers, else MaxCapacity in Standard DPUs,
    else AWS's default (10 G.1X workers)."""
    worker_type = run.get("WorkerType")
    workers = run.get("NumberOfWorkers")
    if worker_type in WORKER_TYPES and workers:
        count = int(workers)
    elif run.get("MaxCapacity"):
        worker_type, count = "Standard", max(2, round(float(run["MaxCapacity"])))
    else:
        worker_type, count = DEFAULT_WORKER_TYPE, DEFAULT_WORKERS
    cores, memory = WORKER_TYPES[worker_type]
    return Capacity(worker_type=worker_type, workers=count, cores=cores, memory_gib=memory)


def _machine_memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return 4.0


def _spark_options(
    run: Mapping[str, Any],
    arguments: Mapping[str, str],
    run_dir: Path,
    settings: CommandSettings,
    driver_java: list[str],
) -> list[str]:
    """spark-submit's options: master, resources, Glue's special parameters, user --conf, and
    ``driver_java`` (options of the driver's JVM) before the user's own."""
    size = capacity(run)
    conf: dict[str, str] = {
        "spark.ui.showConsoleProgress": "false",
        # Python workers import awsglue too (Filter and Map run there); on a cluster this
        # assumes the scheduler's install path is the same on every node.
        "spark.executorEnv.PYTHONPATH": str(RUNTIME_DIR),
    }
    if settings.spark_master == LOCAL_MASTER:
        # Everything in one JVM on this machine: the job's cores, at most the machine's, and
        # a heap of the job's size, at most a quarter of the machine's memory.
        cores = min(size.executors * size.cores, os.cpu_count() or 1)
        heap = min(size.executors * size.memory_gib * HEAP_SHARE, _machine_memory_gib() / 4)
        master = f"local[{cores}]"
        conf |= {
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.memory": f"{max(512, int(heap * 1024))}m",
            "spark.sql.shuffle.partitions": str(max(2, 2 * cores)),
        }
    else:
        master = settings.spark_master
        conf |= {
            "spark.executor.instances": str(size.executors),
            "spark.executor.cores": str(size.cores),
            "spark.executor.memory": size.executor_memory,
            # Standalone masters grant cores, not instances.
            "spark.cores.max": str(size.executors * size.cores),
        }
    if arguments.get("--enable-spark-ui", "").lower() == "true":
        events = run_dir / SPARK_EVENTS
        events.mkdir(parents=True, exist_ok=True)
        conf |= {"spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri()}
    # The user's --conf wins over what is derived here.
    conf |= _user_conf(arguments.get("--conf", ""))
    if driver_java:
        java_options = [*driver_java, conf.get("spark.driver.extraJavaOptions", "")]
        conf["spark.driver.extraJavaOptions"] = " ".join(java_options).strip()
    options = ["--master", master, "--name", str(run.get("JobName", "glue-job"))]
    for key, value in conf.items():
        options += ["--conf", f"{key}={value}"]
    py_files = _file_list(arguments.get("--extra-py-files", ""), "--extra-py-files", settings)
    if py_files:
        options += ["--py-files", ",".join(py_files)]
    jars = _file_list(arguments.get("--extra-jars", ""), "--extra-jars", settings)
    if jars:
        options += ["--jars", ",".join(jars)]
    return options


def sizes_executors_itself(arguments: Mapping[str, str]) -> bool:
    """Whether the job's ``--conf`` sets its executors' cores or memory (then they are not
    derived from its WorkerType)."""
    conf = _user_conf(arguments.get("--conf", ""))
    return "spark.executor.cores" in conf or "spark.executor.memory" in conf


def _user_conf(value: str) -> dict[str, str]:
    """Glue's ``--conf`` value: ``k=v``, more pairs joined by `` --conf `` (as AWS documents).

    Raises:
        LaunchError: a pair without ``=``.
    """
    conf = {}
    for raw in value.split("--conf"):
        pair = raw.strip()
        if not pair:
            continue
        key, sep, setting = pair.partition("=")
        if not sep or not key.strip():
            raise LaunchError(f"--conf {pair!r} is not KEY=VALUE")
        conf[key.strip()] = setting.strip()
    return conf


def _file_list(value: str, what: str, settings: CommandSettings) -> list[str]:
    """A comma-separated list of files (local or S3-mapped), as checked local paths."""
    return [
        str(checked_file(entry.strip(), what, settings))
        for entry in value.split(",")
        if entry.strip()
    ]
