/** The app `oncely run` would load: one class handler (inversify) and one function handler. */
import 'reflect-metadata';
import { defineApp } from '@oncely/core';
import { Container } from 'inversify';
import { withClicks } from './clicks.js';
import { APP_SCHEMA, LedgerRepository, paymentHandler } from './ledger.js';
import { env } from './start.js';

const container = new Container();
container.bind(APP_SCHEMA).toConstantValue(env('APP_SCHEMA'));
container.bind(LedgerRepository).toSelf();

const app = defineApp({ group: env('APP_GROUP'), container }).register(paymentHandler(env('PAYMENTS_TOPIC')));
export default withClicks(app, env('CLICKS_TOPIC'), env('APP_SCHEMA'));
