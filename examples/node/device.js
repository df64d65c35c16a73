// A gatewayd WebSocket device: the dashboard's Node.js example, as it ships.
// Set WS_URL, DEVICE_ID and TOKEN (from `gatewayd device add NAME`) in the environment or edit the
// defaults below. EXIT_AFTER_MESSAGES=N ends the process after N received messages and
// TELEMETRY_INTERVAL_MS changes the 30 s period (both for tests; leave them unset on a device).
const WebSocket = require("ws")
const WS_URL = process.env.WS_URL || "ws://YOUR_SERVER_IP:3000/ws"
const DEVICE_ID = process.env.DEVICE_ID || "your-device-uuid" // From dashboard
const TOKEN = process.env.TOKEN || "tok_your_device_token" // From dashboard
const EXIT_AFTER_MESSAGES = Number(process.env.EXIT_AFTER_MESSAGES || 0)
const TELEMETRY_INTERVAL_MS = Number(process.env.TELEMETRY_INTERVAL_MS || 30000)
let ws = null
let reconnectTimer = null
let received = 0

function connect() {
  console.log("Connecting to", WS_URL)
  ws = new WebSocket(WS_URL)
  ws.on("open", () => {
    console.log("Connected! Registering...")
    ws.send(JSON.stringify({
      type: "register",
      device_id: DEVICE_ID,
      token: TOKEN
    }))
  })
  ws.on("message", (data) => {
    const msg = JSON.parse(data.toString())
    console.log("Received:", msg)
    if (msg.type === "command") {
      handleCommand(msg.command, msg.payload)
    }
    received += 1
    if (EXIT_AFTER_MESSAGES && received >= EXIT_AFTER_MESSAGES) {
      process.exit(0)
    }
  })
  ws.on("close", () => {
    console.log("Disconnected. Reconnecting in 5s...")
    reconnectTimer = setTimeout(connect, 5000)
  })
  ws.on("error", (err) => {
    console.error("WebSocket error:", err.message)
  })
}

function handleCommand(command, payload) {
  console.log("Executing command:", command, payload)
  // Implement your device-specific logic here
}

function sendTelemetry(data) {
  if (ws?.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({
      type: "telemetry",
      payload: data
    }))
  }
}

// Start connection
connect()

// Send telemetry every 30 seconds
setInterval(() => {
  sendTelemetry({
    temperature: 22.5 + Math.random() * 2,
    humidity: 45 + Math.random() * 10
  })
}, TELEMETRY_INTERVAL_MS)
