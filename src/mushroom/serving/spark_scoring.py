"""``mushroom predict --engine spark``: a CSV or Parquet file scored on a local Spark session
by the registered model (mushroom.serving.mlflow_model) through ``mlflow.pyfunc.spark_udf``,
for files too large for one process (a prediction-log snapshot among them). The output is the
in-process route's, cell for cell: its columns, validation and messages
(mushroom.serving.csv_scoring), written atomically.

A CSV file is read and checked in this process by the in-process route's own code: its file
line numbers need one reader. A Parquet file's columns are checked here, from its footer: a
categorical trait must be a text column, a measurement a numeric one; null (or NaN) is
unknown. Its values are checked by Spark's workers: a value the API refuses stops it, named by
file, row (counted from 0, as pandas does), column and value. Its columns that are neither
traits nor passed through are left out, and named: a Parquet file is a program's export, such
as a log snapshot, whose earlier answers hold the answer columns' names and which carries
every dataset's traits.

pyspark is imported here only, when the engine is asked for: other commands do not pay for
starting it.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import TypeAdapter, ValidationError

from mushroom.core.atomic import OutputRefused, check_replaceable
from mushroom.core.catalogue import DatasetCatalogue, Trait, get_catalogue
from mushroom.core.paths import mlflow_uri
from mushroom.core.text import MAX_SHOWN_ERRORS, quoted
from mushroom.lifecycle.registry import for_mlflow, registry_file
from mushroom.lifecycle.store_names import ALIAS, NAME, POLICY_FILE
from mushroom.model.bundle import read_policy
from mushroom.serving.csv_scoring import (
    InputError,
    Problems,
    read_table,
    trait_columns,
    validate_rows,
    write_answers,
)
from mushroom.serving.mlflow_model import ANSWER_COLUMNS
from mushroom.serving.schema import served_mushroom

DEFAULT_URI = f"models:/{NAME}@{ALIAS}"
REGISTERED = re.compile(r"models:/(?P<name>[^/@]+)(/(?P<version>\d+)|@(?P<alias>[\w-]+))")
ROWS_PER_PART = 100_000
ROW, ANSWER = "_mushroom_row", "_mushroom_answer"
"""Columns of the Spark frames, named so that no input column takes their names."""
RESULT = ", ".join(f"{name} {kind}" for name, kind in ANSWER_COLUMNS.items())
# The gateway's own logger set like the root one: Spark then skips its "Setting default log
# level" banner, which it prints for pyspark even when the root level is set.
LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark: %p %c{1}: %m%n
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
"""


def start(folder: Path):
    """A local Spark session on every core, bound to the loopback, without its web UI or
    progress bars, logging errors only (its log4j configuration is written into ``folder``)."""
    from pyspark.sql import SparkSession

    config = folder / "log4j2.properties"
    config.write_text(LOG4J)
    return (
        SparkSession.builder.master("local[*]")
        .appName("mushroom predict")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={config}")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


@contextlib.contextmanager
def session(folder: Path):
    """The session this process runs already (a test module's), left running; else a new one,
    stopped on leaving."""
    from pyspark.sql import SparkSession

    running = SparkSession.getActiveSession()
    if running is not None:
        yield running
        return
    spark = start(folder)
    try:
        yield spark
    finally:
        spark.stop()


def fetch_model(uri: str, folder: Path) -> tuple[Path, str]:
    """The model's local copy, and the ``model_version`` its answers carry. An alias is read
    once: every row is scored by the version it named then, named as the in-process route
    names a promoted model (``mushroom-classifier:3``). A registered version is fetched from
    where the registry says its files are, every lookup on this project's store: MLflow's
    ``models:/`` resolution follows the process's current tracking URI instead, which an
    earlier ``mlflow.set_tracking_uri`` in the same process may have moved."""
    from mlflow.exceptions import MlflowException

    store = for_mlflow(mlflow_uri())
    database = registry_file(store)
    if uri.startswith(("models:", "runs:")) and database is not None and not database.exists():
        # MLflow would create an empty store there, and then find no model in it.
        raise InputError(f"--model-uri {uri}: no MLflow store at {database}; run `make promote`")
    found, version = REGISTERED.fullmatch(uri), None
    try:
        source = uri
        if found:
            client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
            version = (
                found["version"]
                or client.get_model_version_by_alias(found["name"], found["alias"]).version
            )
            source = client.get_model_version_download_uri(found["name"], version)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=source,
            dst_path=str(folder / "model"),
            tracking_uri=store,
            registry_uri=store,
        )
    except (MlflowException, OSError) as exc:
        raise InputError(f"--model-uri {uri}: {getattr(exc, 'message', exc)}") from None
    return Path(local), f"{found['name']}:{version}" if found else uri


def bundle_folder(model: Path, uri: str) -> Path:
    """The model and policy the judgement was logged with: its validation needs the policy."""
    from mlflow.models import Model

    artifacts = Model.load(str(model)).flavors.get("python_function", {}).get("artifacts") or {}
    if "bundle" not in artifacts:
        raise InputError(
            f"--model-uri {uri}: not the whole judgement (mushroom.serving.mlflow_model); "
            "promote its model again to register one"
        )
    return model / artifacts["bundle"]["path"]


def validator(bundle: Path):
    """The API's validation of one mushroom by the model in ``bundle``."""
    return TypeAdapter(served_mushroom(bundle)).validate_python


def spark_type(trait: Trait) -> str:
    return "double" if trait.is_numeric else "string"


def column(name: str):
    from pyspark.sql.functions import col

    return col(f"`{name.replace('`', '``')}`")


def read_csv(args, passthrough: list[str], catalogue: DatasetCatalogue, bundle: Path):
    """The CSV's header and rows, and its mushrooms validated, as the in-process route reads,
    checks and validates them: one trait per column, unknown as None."""
    header, rows = read_table(args.input)
    columns = trait_columns(header, passthrough, catalogue, args.input)
    mushrooms = validate_rows(rows, columns, validator(bundle), args.input)
    table = pd.DataFrame(mushrooms, columns=catalogue.trait_names)
    table.insert(0, ROW, [line for line, _ in rows])
    return header, rows, table


def csv_frame(spark, table: pd.DataFrame, catalogue: DatasetCatalogue, folder: Path):
    """The validated mushrooms as Spark reads them: through a Parquet file, which it splits
    among its workers (a frame built from pandas took ~4 s for 100,000 rows)."""
    kinds = [(t.name, pa.float64() if t.is_numeric else pa.string()) for t in catalogue.traits]
    schema = pa.schema([(ROW, pa.int64()), *kinds])
    pq.write_table(pa.Table.from_pandas(table, schema, preserve_index=False), folder / "in.parquet")
    frame = spark.read.parquet(literal(folder / "in.parquet"))
    return frame, {name: column(name) for name in catalogue.trait_names}


def read_parquet_schema(args, passthrough: list[str], catalogue: DatasetCatalogue):
    """The Parquet file's columns kept (traits and passed through, in file order), per trait
    the column giving it, and its number of rows; a trait's column of the wrong type stops it."""
    try:
        metadata = pq.read_metadata(args.input)
        types = {field.name: field.type for field in metadata.schema.to_arrow_schema()}
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{args.input}: cannot read as Parquet: {exc}") from None
    spelled = {spelling for t in catalogue.traits for spelling in (t.name, t.column)}
    kept = [name for name in types if name in spelled or name in passthrough]
    left_out = [name for name in types if name not in kept]
    if left_out:
        print(
            f"mushroom predict: {args.input}: left out (neither traits of the "
            f"{catalogue.name} model nor --passthrough): {', '.join(map(quoted, left_out))}",
            file=sys.stderr,
        )
    columns, problems = trait_columns(kept, passthrough, catalogue, args.input), Problems()
    for _, name, trait in columns:
        kind = types[name]
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        fits = (
            pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
            if trait.is_numeric
            else pa.types.is_string(kind) or pa.types.is_large_string(kind)
        )
        if not (fits or pa.types.is_null(kind)):
            wanted = f"numbers (in {trait.unit})" if trait.is_numeric else "text"
            problems.add(f"{args.input}: column {quoted(name)}: {kind} values; {wanted} expected")
    problems.raise_any()
    return kept, {trait.name: name for _, name, trait in columns}, metadata.num_rows


def literal(path: Path) -> str:
    """``path`` as Spark reads it: Hadoop expands glob characters (``a[1].parquet`` read
    ``a1.parquet``), escaped here."""
    return re.sub(r"([\\[\]{}*?])", r"\\\1", str(path.absolute()))


def check_values(values, source: Path, bundle: Path) -> None:
    """Every value of ``values`` (the row number, then one column per trait given) validated
    by Spark's workers as the API validates it; the first problems in file order are
    reported, with how many more."""

    def problems_in(batches):
        validate = validator(bundle)
        for batch in batches:
            found = []
            rows = batch.pop(ROW).tolist()
            for row, given in zip(rows, batch.to_dict("records"), strict=True):
                try:
                    validate({name: value for name, value in given.items() if not pd.isna(value)})
                except ValidationError as exc:
                    for order, error in enumerate(exc.errors()):
                        field = "".join(f"{part}: " for part in error["loc"])
                        what = f"{field}{quoted(error['input'])}: {error['msg']}"
                        found.append((row, order, f"{source}: row {row}: {what}"))
            if found:
                yield pd.DataFrame(found, columns=["row", "order", "line"])

    problems = values.mapInPandas(problems_in, "row long, order int, line string")
    count = problems.count()
    if count:
        found = Problems()
        for problem in problems.orderBy("row", "order").limit(MAX_SHOWN_ERRORS).collect():
            found.add(problem.line)
        found.count = count
        found.raise_any()


def parquet_frame(spark, source: Path, kept: list[str], given: dict[str, str], catalogue, bundle):
    """The Parquet file's row numbers and kept columns as a Spark frame, every value
    validated; and per trait, the value the model is given."""
    from pyspark.sql.functions import col

    traits = {t.name: t for t in catalogue.traits}
    inputs = {
        name: column(spelled).cast(spark_type(traits[name])) for name, spelled in given.items()
    }
    frame = spark.read.parquet(literal(source)).select(
        col("_metadata.row_index").alias(ROW), *map(column, kept)
    )
    values = frame.select(ROW, *(value.alias(given[name]) for name, value in inputs.items()))
    check_values(values, source, bundle)
    return frame, inputs


def judged_rows(folder: Path):
    """The answers Spark wrote, in row order: a partition per file, which Spark names by the
    partition's number, and the partitions are ranges of rows."""
    for part in sorted(folder.glob("part-*.parquet")):
        for batch in pq.ParquetFile(part).iter_batches():
            yield from batch.to_pylist()


def answers_of(rows, version: str, counts: Counter):
    """The in-process route's answers from the model's results."""
    for row in rows:
        result = row[ANSWER]
        counts[result["verdict"]] += 1
        yield {
            "verdict": result["verdict"],
            "probability_poisonous": result["probability_poisonous"],
            "unknown_traits": json.loads(result["unknown_traits"]),
            "edible_possible": result["edible_possible"],
            "check_next": json.loads(result["check_next"]),
            "reasons": json.loads(result["reasons"]),
            "model_version": version,
        }


def cell(value: object) -> str:
    """A Parquet value as a CSV cell: null is blank."""
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


class Notes(logging.Filter):
    """Drops spark_udf's notes: which backend it chose, and its advice against
    ``env_manager="local"``, which is chosen: the model's requirements are the pins this
    environment was installed from (src/requirements-serve.txt). Its other warnings, a
    requirement this environment does not meet among them, still show."""

    LOGGERS = ("mlflow.pyfunc", "mlflow.models.flavor_backend_registry")

    def filter(self, record: logging.LogRecord) -> bool:
        advice = 'env_manager="local"' in record.getMessage()
        return record.levelno >= logging.WARNING and not advice


def judge(spark, frame, rows: int, model: Path, inputs: dict, given: list[str], catalogue):
    """The frame's rows in order, each with its ``given`` columns (as ``_0``, ``_1``, ...:
    Parquet takes fewer names than Spark) and the model's answer."""
    from pyspark.sql.functions import lit, struct

    notes, loggers = Notes(), [logging.getLogger(name) for name in Notes.LOGGERS]
    for logger in loggers:
        logger.addFilter(notes)
    try:
        udf = mlflow.pyfunc.spark_udf(spark, str(model), result_type=RESULT, env_manager="local")
    finally:
        for logger in loggers:
            logger.removeFilter(notes)
    described = struct(
        *(inputs.get(t.name, lit(None)).cast(spark_type(t)).alias(t.name) for t in catalogue.traits)
    )
    # Each partition loads the model (~0.5 s; Spark's 200 shuffle partitions spent 70 s on
    # 25,000 rows) and its file is read whole by the writer: one per core, or per
    # ROWS_PER_PART.
    parts = max(spark.sparkContext.defaultParallelism, -(-rows // ROWS_PER_PART))
    # Ordered before the model runs: the range partitioner's sampling pass reads the input,
    # and does not run the model.
    return (
        frame.repartitionByRange(parts, ROW)
        .sortWithinPartitions(ROW)
        .select(
            ROW,
            *(column(name).alias(f"_{i}") for i, name in enumerate(given)),
            udf(described).alias(ANSWER),
        )
    )


def predict_on_spark(args: argparse.Namespace) -> int:
    """Like ``csv_scoring.predict``; what can be checked without Spark is, before it starts.
    The answers are judged on every core at once into Parquet files, then written out in
    order: a lazy iterator over them would judge one partition at a time."""
    passthrough = list(dict.fromkeys(args.passthrough))
    uri, counts = args.model_uri or DEFAULT_URI, Counter()
    parquet = args.input.suffix.lower() == ".parquet"
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        check_replaceable(args.output, args.input)
        with tempfile.TemporaryDirectory(prefix="mushroom-spark-") as name:
            folder = Path(name)
            model, version = fetch_model(uri, folder)
            bundle = bundle_folder(model, uri)
            catalogue = get_catalogue(read_policy(bundle / POLICY_FILE)["dataset"])
            if parquet:
                header, given, count = read_parquet_schema(args, passthrough, catalogue)
            else:
                header, rows, table = read_csv(args, passthrough, catalogue, bundle)
                count = len(rows)
            with session(folder) as spark:
                if parquet:
                    frame, inputs = parquet_frame(
                        spark, args.input, header, given, catalogue, bundle
                    )
                else:
                    frame, inputs = csv_frame(spark, table, catalogue, folder)
                judged = judge(
                    spark, frame, count, model, inputs, header if parquet else [], catalogue
                )
                judged.write.parquet(str(folder / "judged"))
            results = judged_rows(folder / "judged")
            if parquet:
                # write_answers takes rows and answers apart; tee walks both in step.
                cells, results = itertools.tee(results)
                columns = [f"_{i}" for i in range(len(header))]
                rows = ((r[ROW], [cell(r[c]) for c in columns]) for r in cells)
            write_answers(args.output, header, rows, answers_of(results, version, counts))
    except (InputError, OutputRefused) as exc:
        print(f"mushroom predict: {exc}", file=sys.stderr)
        return 2
    print(f"mushroom predict: wrote {args.output}: {dict(counts.most_common())}")
    return 0
