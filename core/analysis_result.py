"""The structured analysis the vision model returns, and the numbers ChartBot works out from it.

`ModelReport` is the schema of the model's response (OpenAI structured outputs
generate the JSON schema from it), so every field is required and nullable
fields are typed as such. Its validators reject responses a trader could not act on: a
stop on the wrong side of the entry, targets behind it, prices at or below
zero. `AnalysisResult` is what an analysis stores: the report and the
risk-reward multiples ChartBot computes from its prices.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Trend = Literal["up", "down", "sideways"]
MAX_LEVELS = 5
MAX_TARGETS = 4


class ChartReport(BaseModel):
    """The model's reading of one chart."""

    model_config = ConfigDict(extra="forbid")

    chart: int = Field(description="1 for the first chart sent, 2 for the second, and so on")
    readable: bool = Field(description="false when this image is not a price chart or cannot be read")
    symbol: str | None = Field(description="instrument as printed on the chart, e.g. BTCUSDT; null when not shown")
    timeframe: str | None = Field(description="bar interval as printed on the chart, e.g. 4h or 1D; null when not shown")
    trend: Trend = Field(description="direction over the visible window")
    trend_strength: Literal["weak", "moderate", "strong"]
    support: list[float] = Field(description="support prices read from the price axis, nearest to the last price first")
    resistance: list[float] = Field(
        description="resistance prices read from the price axis, nearest to the last price first")
    patterns: list[str] = Field(description="chart and candlestick patterns visible, e.g. ascending triangle")
    indicators: list[str] = Field(description="indicators visible and what they show, e.g. RSI 68 near overbought")

    @model_validator(mode="after")
    def _check_levels(self) -> ChartReport:
        if self.chart < 1:
            raise ValueError("chart numbers start at 1")
        for name in ("support", "resistance"):
            prices = getattr(self, name)
            if any(price <= 0 for price in prices):
                raise ValueError(f"{name} prices must be above zero")
            if len(prices) > MAX_LEVELS:
                setattr(self, name, prices[:MAX_LEVELS])
        return self


class TradeIdea(BaseModel):
    """A trade the chart supports: where to enter, where it is wrong, where to take profit."""

    model_config = ConfigDict(extra="forbid")

    direction: Literal["long", "short"]
    entry_low: float = Field(description="lower bound of the entry zone")
    entry_high: float = Field(description="upper bound of the entry zone; equal to entry_low for one price")
    stop: float = Field(description="stop-loss price: below the entry for a long, above it for a short")
    targets: list[float] = Field(description="take-profit prices, nearest first")
    invalidation: str = Field(description="the condition that cancels the idea, e.g. a daily close below 41,000")

    @model_validator(mode="after")
    def _check_prices(self) -> TradeIdea:
        if self.entry_low > self.entry_high:
            self.entry_low, self.entry_high = self.entry_high, self.entry_low
        prices = [self.entry_low, self.entry_high, self.stop, *self.targets]
        if any(price <= 0 for price in prices):
            raise ValueError("trade prices must be above zero")
        if not 1 <= len(self.targets) <= MAX_TARGETS:
            raise ValueError(f"a trade idea needs 1 to {MAX_TARGETS} targets")
        if self.direction == "long":
            if self.stop >= self.entry_low:
                raise ValueError("a long's stop must be below its entry zone")
            if any(target <= self.entry_high for target in self.targets):
                raise ValueError("a long's targets must be above its entry zone")
        else:
            if self.stop <= self.entry_high:
                raise ValueError("a short's stop must be above its entry zone")
            if any(target >= self.entry_low for target in self.targets):
                raise ValueError("a short's targets must be below its entry zone")
        if not self.invalidation.strip():
            raise ValueError("a trade idea needs an invalidation")
        return self

    @property
    def entry(self) -> float:
        """The middle of the entry zone, the price risk and reward are measured from."""
        return (self.entry_low + self.entry_high) / 2

    def risk_reward(self) -> list[float]:
        """Reward over risk for each target, measured from the middle of the entry zone, to two decimals."""
        risk = abs(self.entry - self.stop)
        return [round(abs(target - self.entry) / risk, 2) for target in self.targets]


class ModelReport(BaseModel):
    """The model's whole response to one request of one or more charts."""

    model_config = ConfigDict(extra="forbid")

    readable_chart: bool = Field(description="false when no image is a readable price chart")
    bias: Literal["bullish", "bearish", "neutral"] = Field(description="overall directional bias")
    confidence: Literal["low", "medium", "high"]
    charts: list[ChartReport] = Field(description="one entry per chart, in the order they were sent")
    confluence: str | None = Field(
        description="with several charts: where the timeframes agree or conflict, in one or two sentences; "
                    "null with one chart")
    trade_idea: TradeIdea | None = Field(description="null when the chart supports no trade with a clear stop")
    summary: str = Field(description="two or three plain sentences a trader can read at a glance")
    reader_measurements: Literal["agree", "partly_agree", "disagree", "not_given"] = Field(
        description="whether the chart matches the measured facts given in the request")

    @model_validator(mode="after")
    def _check_report(self) -> ModelReport:
        if self.readable_chart and not self.charts:
            raise ValueError("a readable response must contain at least one chart")
        if self.readable_chart and not self.summary.strip():
            raise ValueError("a readable response must contain a summary")
        return self


class AnalysisResult(BaseModel):
    """The stored outcome of an analysis: the model's report and the risk-reward ChartBot computed from it."""

    report: ModelReport
    risk_reward: list[float] = Field(default_factory=list, description="one multiple per target of the trade idea")

    @classmethod
    def from_report(cls, report: ModelReport) -> AnalysisResult:
        """Compute the derived numbers of a validated report."""
        ratios = report.trade_idea.risk_reward() if report.trade_idea is not None else []
        return cls(report=report, risk_reward=ratios)
