// purser guest SDK for AssemblyScript (see ../README.md). Import the API from
// here; re-export the exports from "./estimator" or "./policy" in your entry.
export * from "./request";
export * from "./result";
export * from "./plugin";
export * from "./json";
export * from "./usd";
export * from "./log";
export * from "./llm";
