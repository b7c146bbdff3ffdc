package delivery_test

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/adapters/internal/delivery"
	"github.com/infleet/infleet/adapters/internal/delivery/deliverytest"
)

// A transport implements Source (and Extender where its messages are leased); the engine
// does the rest. Here the source is deliverytest's in-memory queue.
func ExampleStart() {
	queue := deliverytest.NewQueue(0)
	queue.Publish(
		message.NewMessage("1", []byte("summarize")),
		message.NewMessage("2", []byte("translate")),
		message.NewMessage("3", []byte("classify")),
	)
	e := delivery.Start(context.Background(), delivery.Config{MaxInFlight: 2}, queue)
	for range 4 {
		msg := <-e.Messages()
		n := msg.Metadata.Get(deliverytest.MetaDeliveries)
		fmt.Println(string(msg.Payload), "delivery", n)
		if msg.UUID == "2" && n == "1" {
			msg.Nack() // the queue delivers it again, after the message ahead of it
			continue
		}
		msg.Ack()
	}
	e.Close()
	s := queue.Stats()
	fmt.Println("acked", s.Acked, "nacked", s.Nacked, "left", s.Ready+s.InFlight)
	// Output:
	// summarize delivery 1
	// translate delivery 1
	// classify delivery 1
	// translate delivery 2
	// acked 3 nacked 1 left 0
}
