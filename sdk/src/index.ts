export { ConversationSocket, type SocketConnector, type WebSocketLike } from "./ConversationSocket.ts";
export * from "./calls/CallSession.ts";
export { fromBase64, toBase64 } from "./encoding.ts";
export { decryptFile, encryptFile, type FileKey } from "./files.ts";
export { SecureConnectError } from "./http.ts";
export { CIPHERSUITE } from "./MlsDevice.ts";
export { type ClientOptions, type ReceivedMessage, SecureConnectClient } from "./SecureConnectClient.ts";
